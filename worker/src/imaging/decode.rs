//! Decoding to 8-bit RGB. JPEG goes through `jpeg-decoder`, whose DCT scaling
//! decodes straight to 1/2, 1/4 or 1/8 size ("shrink on load"); the other
//! formats through the `image` crate, with allocation limits from the probe.
//! Alpha is composited over white; 16-bit, grey, palette and CMYK all end as RGB.

use super::probe::{decode_error, jpeg_scale, Probe, SourceFormat};
use super::{ImageError, Rgb};
use image::DynamicImage;
use std::io::Cursor;
use zipfleet_shared::spec::OutputSpec;

pub(super) fn decode(bytes: &[u8], probe: &Probe, output: &OutputSpec) -> Result<Rgb, ImageError> {
    match probe.format {
        SourceFormat::Jpeg => decode_jpeg(bytes, probe, output),
        _ => decode_with_image(bytes, probe),
    }
}

fn decode_jpeg(bytes: &[u8], probe: &Probe, output: &OutputSpec) -> Result<Rgb, ImageError> {
    let jpeg_error = |err: jpeg_decoder::Error| match err {
        jpeg_decoder::Error::Unsupported(feature) => ImageError::UnsupportedFormat(format!("this JPEG uses a feature zipfleet cannot read ({feature:?})")),
        other => ImageError::Decode(other.to_string()),
    };
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(usize::try_from(probe.working_bytes).unwrap_or(usize::MAX));
    let k = jpeg_scale(probe.width, probe.height, output, probe.orientation);
    let request = |side: u32| u16::try_from(side.div_ceil(k)).unwrap_or(u16::MAX);
    let (width, height) = decoder.scale(request(probe.width), request(probe.height)).map_err(jpeg_error)?;
    let pixels = decoder.decode().map_err(jpeg_error)?;
    let info = decoder.info().ok_or_else(|| ImageError::Decode("no frame".into()))?;
    let (width, height) = (u32::from(width), u32::from(height));
    let count = width as usize * height as usize;
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        jpeg_decoder::PixelFormat::L16 => pixels.chunks_exact(2).flat_map(|be| [be[0], be[0], be[0]]).collect(),
        // jpeg-decoder undoes Adobe's inverted storage: these are ink amounts.
        jpeg_decoder::PixelFormat::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|cmyk| {
                let k = 255 - u32::from(cmyk[3]);
                let channel = |ink: u8| ((255 - u32::from(ink)) * k / 255) as u8;
                [channel(cmyk[0]), channel(cmyk[1]), channel(cmyk[2])]
            })
            .collect(),
    };
    if rgb.len() < count * 3 {
        return Err(ImageError::Decode("the decoder returned too few pixels".into()));
    }
    Ok(Rgb { width, height, pixels: rgb })
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
        return Err(ImageError::Decode("the image's size changed between header and pixels".into()));
    }
    Ok(to_rgb_on_white(image))
}

/// 8-bit RGB; transparent pixels become white.
pub(super) fn to_rgb_on_white(image: DynamicImage) -> Rgb {
    let (width, height) = (image.width(), image.height());
    let pixels = if image.color().has_alpha() {
        let rgba = image.into_rgba8();
        rgba.as_raw()
            .chunks_exact(4)
            .flat_map(|p| {
                let a = u32::from(p[3]);
                let over_white = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
                [over_white(p[0]), over_white(p[1]), over_white(p[2])]
            })
            .collect()
    } else {
        image.into_rgb8().into_raw()
    };
    Rgb { width, height, pixels }
}
