//! PNG decoding with the `png` crate, row by row into a box shrink: a
//! non-interlaced PNG never exists at full size in memory, only one row of it
//! and the shrunk image (libvips streams PNG rows the same way). Interlaced
//! (Adam7) PNGs arrive in seven passes, so they are decoded whole first.
//!
//! Every colour type and depth ends as 8-bit RGB: palette expanded, 16-bit
//! cut to 8, grey repeated, alpha composited over white.

use crate::decode_path::{DecodePath, Decoded};
use crate::error::ImageError;
use crate::pixels::over_white;
use crate::shrink::BoxShrinker;
use png::{ColorType, Transformations};
use std::io::Cursor;

/// Decode to RGB box-shrunk by `fx`×`fy`, allocating at most `max_bytes` in
/// the decoder.
pub(crate) fn decode(
    bytes: &[u8],
    fx: u32,
    fy: u32,
    max_bytes: u64,
) -> Result<Decoded, ImageError> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
        },
    );
    decoder.set_transformations(Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(png_error)?;
    let (width, height, interlaced) = {
        let info = reader.info();
        (info.width, info.height, info.interlaced)
    };
    let (color, _) = reader.output_color_type();
    let mut shrinker = BoxShrinker::new(width, height, fx, fy);
    let mut rgb_row = vec![0u8; width as usize * 3];
    let mut rows = 0u32;
    if interlaced {
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| ImageError::OverBudget("the decoded PNG would be too large".into()))?;
        let mut frame = vec![0u8; size];
        let layout = reader.next_frame(&mut frame).map_err(png_error)?;
        for line in frame.chunks_exact(layout.line_size).take(height as usize) {
            to_rgb(line, color, &mut rgb_row);
            shrinker.push_row(&rgb_row);
            rows += 1;
        }
    } else {
        while let Some(row) = reader.next_row().map_err(png_error)? {
            if color == ColorType::Rgb {
                shrinker.push_row(row.data());
            } else if color == ColorType::Rgba {
                shrinker.push_rgba_row(row.data());
            } else {
                to_rgb(row.data(), color, &mut rgb_row);
                shrinker.push_row(&rgb_row);
            }
            rows += 1;
        }
    }
    if rows != height {
        return Err(ImageError::Decode(format!(
            "the PNG has {rows} of its {height} rows"
        )));
    }
    let (shrink_x, shrink_y) = shrinker.factors();
    Ok(Decoded {
        image: shrinker.finish(),
        path: DecodePath::PngRows {
            shrink_x,
            shrink_y,
            interlaced,
        },
    })
}

/// One decoded 8-bit row (grey, grey+alpha, RGB or RGBA) as RGB.
fn to_rgb(line: &[u8], color: ColorType, out: &mut [u8]) {
    match color {
        ColorType::Rgb => out.copy_from_slice(&line[..out.len()]),
        ColorType::Rgba => {
            for (pixel, rgba) in out.chunks_exact_mut(3).zip(line.chunks_exact(4)) {
                pixel.copy_from_slice(&over_white(rgba));
            }
        }
        ColorType::Grayscale => {
            for (pixel, &grey) in out.chunks_exact_mut(3).zip(line) {
                pixel.fill(grey);
            }
        }
        ColorType::GrayscaleAlpha => {
            for (pixel, ga) in out.chunks_exact_mut(3).zip(line.chunks_exact(2)) {
                pixel.copy_from_slice(&over_white(&[ga[0], ga[0], ga[0], ga[1]]));
            }
        }
        // normalize_to_color8 expands palettes, so this is never reached.
        ColorType::Indexed => out.fill(0),
    }
}

fn png_error(err: png::DecodingError) -> ImageError {
    match err {
        png::DecodingError::LimitsExceeded => {
            ImageError::OverBudget("exceeds a decoding limit".into())
        }
        png::DecodingError::IoError(err) => {
            ImageError::Decode(format!("the PNG file ends early ({err})"))
        }
        other => ImageError::Decode(other.to_string()),
    }
}
