//! The zipfleet image pipeline, pure and synchronous (no I/O of its own, no
//! async runtime, no service): bytes in, encoded training image out.
//!
//! 1. [`probe`]: recognise the format from the bytes, read the header
//!    (dimensions, EXIF orientation, JPEG frame layout, WebP features),
//!    refuse what is too big, and return the **plan** ([`Probe`]): the
//!    decoder and its numbers, the size it will decode to, the fit geometry
//!    for that size, and the peak memory all of it needs — before any pixel
//!    is decoded.
//! 2. [`render`]: execute the plan — decode (shrinking on load where the
//!    decoder can), convert to 8-bit RGB (alpha over white), resize per the
//!    fit, apply the EXIF orientation, fingerprint the final pixels for the
//!    dataset report ([`signature`]), encode. Nothing is decided again, so
//!    the memory estimate is the decode's own numbers. No metadata is ever
//!    written to the output.
//!
//! # Layout
//!
//! Modules in dependency order; each uses only those above it:
//!
//! - `output`, `error`, [`pixels`](Rgb): what is asked for, what can go
//!   wrong, the RGB buffer and compositing over white.
//! - `format`: sniffing the format, the one format → `image` crate mapping.
//! - `fit`: fit geometry ([`FitPlan`]) and shrink-on-load factors.
//! - `decode_path`: the decoder-and-numbers part of a plan ([`DecodePath`]).
//! - `shrink`: the streaming box shrink.
//! - codecs, independent of each other: `jpeg` (libjpeg-turbo), `webp`
//!   (libwebp: features and decoders), `png` (rows into `shrink`), `whole`
//!   (the `image` crate).
//! - `header`: reading every header, once.
//! - `plan`: header + output → [`Probe`], with [`probe`] the entry point.
//! - `decode`: runs the planned decoder.
//! - `resize`: box pre-shrink, Lanczos3, orientation, padding, per the plan.
//! - `encode`, [`signature`].
//! - this file: [`render`] and [`render_pixels`].

mod decode;
mod decode_path;
mod encode;
mod error;
mod fit;
mod format;
mod header;
mod jpeg;
mod output;
mod pixels;
mod plan;
mod png;
mod resize;
mod shrink;
pub mod signature;
mod webp;
mod whole;

pub use decode_path::DecodePath;
pub use error::ImageError;
pub use fit::{plan_fit, FitPlan};
pub use format::SourceFormat;
pub use output::{Fit, Output, OutputFormat};
pub use pixels::Rgb;
pub use plan::{probe, Probe};
pub use signature::Signature;

/// A finished training image.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The encoded output (JPEG or PNG), exactly the output's size.
    pub bytes: Vec<u8>,
    /// The source's upright size (after EXIF orientation), for the manifest.
    pub source_width: u32,
    pub source_height: u32,
    /// Fingerprints of the output pixels for the dataset report.
    pub signature: Signature,
}

/// Decode, convert, resize, orient, fingerprint and encode one image by its
/// plan (made by [`probe`] for one output).
pub fn render(bytes: &[u8], plan: &Probe) -> Result<Rendered, ImageError> {
    let framed = render_pixels(bytes, plan)?;
    let signature = Signature::of(&framed);
    let bytes = encode::encode(&framed, &plan.output)?;
    let (source_width, source_height) = plan.upright_size();
    Ok(Rendered {
        bytes,
        source_width,
        source_height,
        signature,
    })
}

/// The output pixels [`render`] encodes: decoded, converted, resized,
/// oriented and padded to exactly the output size, all as planned.
pub fn render_pixels(bytes: &[u8], plan: &Probe) -> Result<Rgb, ImageError> {
    let decoded = decode::decode(bytes, plan)?;
    let resized = resize::resize(decoded.image, &plan.fit)?;
    let upright = resize::orient(resized, plan.orientation);
    Ok(resize::pad(upright, &plan.fit))
}

#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod tests;
