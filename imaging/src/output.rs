//! What the pipeline is asked to produce: size, fit, format and quality.
//!
//! The job spec's `OutputSpec` lives in `zipfleet-shared`, which this crate
//! does not depend on; the worker converts it to an [`Output`] in one place.

/// The training image to make from every source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    pub fit: Fit,
    pub format: OutputFormat,
    /// JPEG quality 1..=100 (ignored for PNG).
    pub quality: u8,
}

/// How an image is brought to exactly `width`×`height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Stretch to exactly width×height.
    Fill,
    /// Scale to cover the box, then centre-crop.
    Cover,
    /// Scale to fit inside the box, then pad with black.
    Contain,
}

/// The encoding of the finished image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Jpeg,
    Png,
}
