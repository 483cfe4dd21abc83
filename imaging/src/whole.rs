//! Whole-image decoding with the `image` crate, for what no shrinking
//! decoder handles: GIF, BMP and animated WebP (first frame only), within
//! the allocation limits the plan gives.

use crate::decode_path::{DecodePath, Decoded};
use crate::error::{from_image_crate, ImageError};
use crate::format::SourceFormat;
use crate::pixels::{over_white, Rgb};
use image::DynamicImage;
use std::io::Cursor;

/// Decode the first frame of a `width`×`height` image, allocating at most
/// `max_bytes`.
pub(crate) fn decode(
    bytes: &[u8],
    format: SourceFormat,
    width: u32,
    height: u32,
    max_bytes: u64,
) -> Result<Decoded, ImageError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(max_bytes);
    reader.limits(limits);
    // Only the first frame of an animation is decoded.
    let image = reader.decode().map_err(from_image_crate)?;
    if image.width() != width || image.height() != height {
        return Err(ImageError::Decode(
            "the image's size changed between header and pixels".into(),
        ));
    }
    Ok(Decoded {
        image: to_rgb_on_white(image),
        path: DecodePath::Whole,
    })
}

/// 8-bit RGB; transparent pixels become white.
fn to_rgb_on_white(image: DynamicImage) -> Rgb {
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
