//! Decoding to 8-bit RGB, each format through the fastest decoder that can
//! shrink while it decodes:
//!
//! - JPEG: libjpeg-turbo at a reduced DCT scale ([`super::jpeg`]);
//! - still WebP: libwebp's scaled decode ([`super::webp`]);
//! - PNG: row by row into a box shrink ([`super::png`]);
//! - GIF, BMP and animated WebP (first frame only): the `image` crate,
//!   with allocation limits from the probe.
//!
//! Alpha is composited over white; 16-bit, grey, palette and CMYK all end as RGB.

use super::probe::{decode_error, jpeg_scale, Probe, SourceFormat};
use super::resize::shrink_on_load_factors;
use super::{jpeg, png, webp, ImageError, Rgb};
use image::DynamicImage;
use std::io::Cursor;
use zipfleet_shared::spec::OutputSpec;

pub(super) fn decode(bytes: &[u8], probe: &Probe, output: &OutputSpec) -> Result<Rgb, ImageError> {
    match probe.format {
        SourceFormat::Jpeg => jpeg::decode(
            bytes,
            jpeg_scale(probe.width, probe.height, output, probe.orientation),
            probe.working_bytes,
        ),
        SourceFormat::WebP => {
            let features = webp::features(bytes)?;
            if features.animated {
                return decode_with_image(bytes, probe);
            }
            let (fx, fy) =
                shrink_on_load_factors(probe.width, probe.height, output, probe.orientation);
            webp::decode_shrunk(bytes, &features, probe.width, probe.height, fx, fy)
        }
        SourceFormat::Png => {
            let (fx, fy) =
                shrink_on_load_factors(probe.width, probe.height, output, probe.orientation);
            png::decode(bytes, fx, fy, probe.working_bytes)
        }
        SourceFormat::Gif | SourceFormat::Bmp => decode_with_image(bytes, probe),
    }
}

fn decode_with_image(bytes: &[u8], probe: &Probe) -> Result<Rgb, ImageError> {
    let format = match probe.format {
        SourceFormat::Png => image::ImageFormat::Png,
        SourceFormat::Gif => image::ImageFormat::Gif,
        SourceFormat::WebP => image::ImageFormat::WebP,
        SourceFormat::Bmp => image::ImageFormat::Bmp,
        SourceFormat::Jpeg => image::ImageFormat::Jpeg,
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(probe.width);
    limits.max_image_height = Some(probe.height);
    limits.max_alloc = Some(probe.working_bytes);
    reader.limits(limits);
    // Only the first frame of an animation is decoded.
    let image = reader.decode().map_err(decode_error)?;
    if image.width() != probe.width || image.height() != probe.height {
        return Err(ImageError::Decode(
            "the image's size changed between header and pixels".into(),
        ));
    }
    Ok(to_rgb_on_white(image))
}

/// 8-bit RGB; transparent pixels become white.
pub(super) fn to_rgb_on_white(image: DynamicImage) -> Rgb {
    let (width, height) = (image.width(), image.height());
    let pixels = if image.color().has_alpha() {
        let rgba = image.into_rgba8();
        rgba.as_raw().chunks_exact(4).flat_map(over_white).collect()
    } else {
        image.into_rgb8().into_raw()
    };
    Rgb {
        width,
        height,
        pixels,
    }
}

/// One RGBA pixel as RGB over a white background.
pub(super) fn over_white(rgba: &[u8]) -> [u8; 3] {
    let a = u32::from(rgba[3]);
    let blend = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
    [blend(rgba[0]), blend(rgba[1]), blend(rgba[2])]
}
