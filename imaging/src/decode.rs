//! Executing the plan's decode: the one place that calls a decoder, with the
//! plan's numbers, and checks the image is the size the plan was made for.
//!
//! - JPEG: libjpeg-turbo at the planned DCT scale ([`crate::jpeg`]);
//! - still WebP: the YUV planes or libwebp's scaled decode ([`crate::webp`]);
//! - PNG: rows into the planned box shrink ([`crate::png`]);
//! - GIF, BMP and animated WebP (first frame only): the `image` crate
//!   ([`crate::whole`]), with allocation limits from the plan.
//!
//! Every decoder ends in 8-bit RGB, alpha composited over white.

use crate::decode_path::{DecodePath, Decoded};
use crate::error::ImageError;
use crate::plan::Probe;
use crate::{jpeg, png, webp, whole};

/// Run the planned decoder and check its image is the planned size.
pub(crate) fn decode(bytes: &[u8], plan: &Probe) -> Result<Decoded, ImageError> {
    let decoded = run_decoder(bytes, plan)?;
    // The fit was planned for this size; a file whose pixels disagree with
    // its header is damaged.
    if (decoded.image.width, decoded.image.height) != (plan.decoded_width, plan.decoded_height) {
        return Err(ImageError::Decode(format!(
            "the image decodes to {}×{}, not the {}×{} its header announces",
            decoded.image.width, decoded.image.height, plan.decoded_width, plan.decoded_height
        )));
    }
    Ok(decoded)
}

/// The planned decoder with the plan's numbers, nothing checked (the tests
/// hold its result against the plan).
pub(crate) fn run_decoder(bytes: &[u8], plan: &Probe) -> Result<Decoded, ImageError> {
    Ok(match plan.decode_path {
        DecodePath::Jpeg { scale, .. } => jpeg::decode(bytes, scale, plan.working_bytes)?,
        DecodePath::WebpYuvPlanes { shrink_x, shrink_y } => {
            webp::decode_yuv_shrunk(bytes, plan.width, plan.height, shrink_x, shrink_y)?
        }
        DecodePath::WebpScaled {
            width,
            height,
            alpha,
        } => webp::decode_scaled(bytes, width, height, alpha)?,
        DecodePath::PngRows {
            shrink_x, shrink_y, ..
        } => png::decode(bytes, shrink_x, shrink_y, plan.working_bytes)?,
        DecodePath::Whole => whole::decode(
            bytes,
            plan.format,
            plan.width,
            plan.height,
            plan.working_bytes,
        )?,
    })
}
