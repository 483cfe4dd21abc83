//! Recognising the format from the bytes (magic numbers), never from the URL
//! or a content type, and saying what a non-image seems to be.

use crate::error::ImageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
    WebP,
    Bmp,
}

impl SourceFormat {
    /// The `image` crate's name for this format (the only such mapping).
    pub(crate) fn image_format(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::Gif => image::ImageFormat::Gif,
            Self::WebP => image::ImageFormat::WebP,
            Self::Bmp => image::ImageFormat::Bmp,
        }
    }
}

/// Recognise the format from the first bytes, or say what the file seems to be.
pub fn sniff(head: &[u8]) -> Result<SourceFormat, ImageError> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Ok(SourceFormat::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(SourceFormat::Png);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Ok(SourceFormat::Gif);
    }
    if head.len() >= 12 && starts(b"RIFF") && &head[8..12] == b"WEBP" {
        return Ok(SourceFormat::WebP);
    }
    if starts(b"BM") && head.len() >= 14 {
        return Ok(SourceFormat::Bmp);
    }
    Err(ImageError::UnsupportedFormat(describe_non_image(head)))
}

fn describe_non_image(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(&head[..head.len().min(512)])
        .trim_start()
        .to_ascii_lowercase();
    let what = if head.is_empty() {
        "an empty file"
    } else if text.starts_with("<!doctype html")
        || text.starts_with("<html")
        || text.contains("<head")
        || text.contains("<body")
    {
        "a web page, not an image"
    } else if text.contains("<svg") {
        "an SVG drawing, which zipfleet does not read"
    } else if head.starts_with(b"%PDF") {
        "a PDF document, not an image"
    } else if head.len() >= 12
        && &head[4..8] == b"ftyp"
        && matches!(
            &head[8..12],
            b"heic" | b"heix" | b"mif1" | b"msf1" | b"hevc"
        )
    {
        "a HEIC photo; please save it as JPEG"
    } else if head.len() >= 12
        && &head[4..8] == b"ftyp"
        && matches!(&head[8..12], b"avif" | b"avis")
    {
        "an AVIF image; please save it as JPEG or PNG"
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        "a TIFF image; please save it as JPEG or PNG"
    } else if text.starts_with('{') || text.starts_with('[') {
        "JSON data, not an image"
    } else {
        "not a JPEG, PNG, WebP, GIF or BMP image"
    };
    format!("this file is {what}")
}
