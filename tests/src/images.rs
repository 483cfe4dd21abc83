//! Test images made in memory, in every format the pipeline reads.

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use std::io::Cursor;

/// A `width`×`height` image with structure (gradients and stripes) so that
/// encoders produce realistic sizes and resizes can be checked.
pub fn pattern(width: u32, height: u32, seed: u8) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let noise = ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)).wrapping_add(u32::from(seed) * 31) % 37) as u8;
        Rgb([(x * 255 / width.max(1)) as u8 ^ noise, (y * 255 / height.max(1)) as u8, seed.wrapping_add(noise * 3)])
    })
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    let image = if format == ImageFormat::WebP { DynamicImage::ImageRgba8(image.to_rgba8()) } else { image.clone() };
    image.write_to(&mut Cursor::new(&mut bytes), format).expect("encodes");
    bytes
}

pub fn jpeg(width: u32, height: u32, seed: u8) -> Vec<u8> {
    encode(&pattern(width, height, seed).into(), ImageFormat::Jpeg)
}

pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    encode(&pattern(width, height, seed).into(), ImageFormat::Png)
}

pub fn webp(width: u32, height: u32, seed: u8) -> Vec<u8> {
    encode(&pattern(width, height, seed).into(), ImageFormat::WebP)
}
