//! Test images made in memory, in every format the pipeline reads.

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use std::io::Cursor;

/// A `width`×`height` image with structure (gradients and stripes) so that
/// encoders produce realistic sizes and resizes can be checked.
pub fn pattern(width: u32, height: u32, seed: u8) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let noise = ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729))
            .wrapping_add(u32::from(seed) * 31)
            % 37) as u8;
        Rgb([
            (x * 255 / width.max(1)) as u8 ^ noise,
            (y * 255 / height.max(1)) as u8,
            seed.wrapping_add(noise * 3),
        ])
    })
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    let image = if format == ImageFormat::WebP {
        DynamicImage::ImageRgba8(image.to_rgba8())
    } else {
        image.clone()
    };
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .expect("encodes");
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

/// A PNG whose header declares `width`×`height` pixels but which carries
/// almost no data: what a decompression bomb looks like to a header check.
pub fn png_bomb_header(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A file of the test fixtures directory.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
