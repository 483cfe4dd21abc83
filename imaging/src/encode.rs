//! Encoding the finished pixels. The encoders write no EXIF, GPS, ICC or
//! text chunks: the output carries pixels and nothing else.

use crate::error::ImageError;
use crate::output::{Output, OutputFormat};
use crate::pixels::Rgb;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

pub(crate) fn encode(image: &Rgb, output: &Output) -> Result<Vec<u8>, ImageError> {
    let mut bytes = Vec::with_capacity(image.pixels.len() / 4);
    let result = match output.format {
        OutputFormat::Jpeg => JpegEncoder::new_with_quality(&mut bytes, output.quality)
            .write_image(
                &image.pixels,
                image.width,
                image.height,
                ExtendedColorType::Rgb8,
            ),
        OutputFormat::Png => PngEncoder::new(&mut bytes).write_image(
            &image.pixels,
            image.width,
            image.height,
            ExtendedColorType::Rgb8,
        ),
    };
    result.map_err(|err| ImageError::Decode(format!("encoding failed: {err}")))?;
    Ok(bytes)
}
