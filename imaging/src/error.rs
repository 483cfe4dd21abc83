//! Why one image could not be turned into a training image.

/// Why one image could not be turned into a training image. `Display` is a
/// message a teacher can read; the worker maps each variant to the
/// contract's error code.
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

/// An `image` crate error as the matching [`ImageError`].
pub(crate) fn from_image_crate(err: image::ImageError) -> ImageError {
    match err {
        image::ImageError::Unsupported(inner) => ImageError::UnsupportedFormat(format!(
            "this image uses a feature zipfleet cannot read ({inner})"
        )),
        image::ImageError::Limits(inner) => {
            ImageError::OverBudget(format!("exceeds a decoding limit ({inner})"))
        }
        other => ImageError::Decode(other.to_string()),
    }
}
