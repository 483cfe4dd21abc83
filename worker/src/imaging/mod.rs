//! The image pipeline, pure and synchronous (no I/O of its own): bytes in,
//! encoded training image out.
//!
//! 1. [`probe`]: recognise the format from the bytes, read the header
//!    (dimensions, EXIF orientation, JPEG frame layout), refuse what is too
//!    big, and estimate the peak memory decoding will need — all before any
//!    pixel is decoded.
//! 2. [`render`]: decode (JPEG at a reduced DCT scale when the output is
//!    smaller: "shrink on load"), convert to 8-bit RGB (alpha over white),
//!    resize per the fit, apply the EXIF orientation, fingerprint the final
//!    pixels for the dataset report ([`signature`]), encode. No metadata is
//!    ever written to the output.

mod decode;
mod encode;
mod jpeg;
mod png;
mod probe;
mod resize;
pub mod signature;
mod webp;

pub use probe::{probe, Probe, SourceFormat};
pub use resize::{plan_fit, FitPlan};
pub use signature::Signature;

use zipfleet_shared::spec::OutputSpec;
use zipfleet_shared::ImageErrorCode;

/// Why one image could not be turned into a training image. `Display` is a
/// message a teacher can read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    UnsupportedFormat(String),
    #[error("the image is {width}×{height} pixels; zipfleet reads at most {limit_mp} megapixels")]
    TooManyPixels {
        width: u64,
        height: u64,
        limit_mp: u64,
    },
    #[error("the image is too big to process: it {0}")]
    OverBudget(String),
    #[error("the image file is damaged or incomplete ({0})")]
    Decode(String),
}

impl ImageError {
    pub fn code(&self) -> ImageErrorCode {
        match self {
            Self::UnsupportedFormat(_) => ImageErrorCode::UnsupportedFormat,
            Self::TooManyPixels { .. } | Self::OverBudget(_) => ImageErrorCode::TooManyPixels,
            Self::Decode(_) => ImageErrorCode::DecodeFailed,
        }
    }
}

/// A finished training image.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The encoded output (JPEG or PNG), exactly `width`×`height`.
    pub bytes: Vec<u8>,
    /// The source's upright size (after EXIF orientation), for the manifest.
    pub source_width: u32,
    pub source_height: u32,
    /// Fingerprints of the output pixels for the dataset report.
    pub signature: Signature,
}

/// Decode, convert, resize, orient, fingerprint and encode one image already probed.
pub fn render(bytes: &[u8], probe: &Probe, output: &OutputSpec) -> Result<Rendered, ImageError> {
    let framed = render_pixels(bytes, probe, output)?;
    let signature = Signature::of(&framed);
    let bytes = encode::encode(&framed, output)?;
    let (source_width, source_height) = probe.upright_size();
    Ok(Rendered {
        bytes,
        source_width,
        source_height,
        signature,
    })
}

/// The output pixels [`render`] encodes: decoded, converted, resized,
/// oriented and padded to exactly the output size.
pub fn render_pixels(bytes: &[u8], probe: &Probe, output: &OutputSpec) -> Result<Rgb, ImageError> {
    let decoded = decode::decode(bytes, probe, output)?;
    let plan = plan_fit(decoded.width, decoded.height, output, probe.orientation);
    let resized = resize::resize(decoded, &plan)?;
    let upright = resize::orient(resized, probe.orientation);
    Ok(resize::pad(upright, &plan))
}

/// An 8-bit RGB pixel buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

#[cfg(test)]
mod tests;
