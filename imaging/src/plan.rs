//! The plan: everything about one image decided once, from its header,
//! before any pixel is decoded — the decoder and its numbers (JPEG DCT
//! scale, WebP YUV planes or scaled decode, PNG row shrink, whole decode),
//! the size that decoder will produce, the fit geometry for that size, the
//! orientation, and the peak working memory. Rendering executes the plan
//! and decides nothing again, so the memory estimate is made from the very
//! numbers the decode will use.

use crate::decode_path::DecodePath;
use crate::error::ImageError;
use crate::fit::{needed_source_size, plan_fit, shrink_on_load_factors, swaps_axes, FitPlan};
use crate::format::SourceFormat;
use crate::header::{self, Header, JpegFrame, Layout};
use crate::output::Output;
use crate::webp;
use image::metadata::Orientation;
use std::io::{Read, Seek};

/// What the header says and what rendering will do about it: the plan for
/// one image and one output.
#[derive(Debug, Clone)]
pub struct Probe {
    pub format: SourceFormat,
    /// Stored size (before orientation).
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
    /// The decoder and its parameters.
    pub decode_path: DecodePath,
    /// The size the decoder produces (stored orientation): what the fit was
    /// planned for and what the memory estimate counts.
    pub decoded_width: u32,
    pub decoded_height: u32,
    /// From the decoded image to the output.
    pub fit: FitPlan,
    /// The output the plan was made for (encoding reads its format and quality).
    pub output: Output,
    /// Estimated peak bytes decoding and resizing will allocate (the
    /// compressed bytes themselves not included).
    pub working_bytes: u64,
}

impl Probe {
    /// Size as a person sees it, after EXIF orientation.
    pub fn upright_size(&self) -> (u32, u32) {
        if swaps_axes(self.orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Read the header of the image at `reader`, refuse what is too big, and
/// plan its rendering to `output`.
pub fn probe<R: Read + Seek>(
    reader: R,
    output: &Output,
    max_pixels: u64,
) -> Result<Probe, ImageError> {
    let header = header::read(reader)?;
    let pixels = u64::from(header.width) * u64::from(header.height);
    if pixels > max_pixels {
        return Err(ImageError::TooManyPixels {
            width: header.width.into(),
            height: header.height.into(),
            limit_mp: max_pixels / 1_000_000,
        });
    }
    if header.width == 0 || header.height == 0 {
        return Err(ImageError::Decode("the image has no pixels".into()));
    }
    Ok(plan(&header, output))
}

/// Decide the decoder, the decoded size, the fit and the memory estimate.
pub(crate) fn plan(header: &Header, output: &Output) -> Probe {
    let (width, height, orientation) = (header.width, header.height, header.orientation);
    let decode_path = match &header.layout {
        Layout::Jpeg(frame) => DecodePath::Jpeg {
            scale: jpeg_scale(width, height, output, orientation),
            multi_scan: frame.progressive,
        },
        Layout::WebP { features, .. } if !features.animated => {
            let (fx, fy) = shrink_on_load_factors(width, height, output, orientation);
            webp_path(features, width, height, fx, fy)
        }
        Layout::Png { interlaced } => {
            let (shrink_x, shrink_y) = shrink_on_load_factors(width, height, output, orientation);
            DecodePath::PngRows {
                shrink_x,
                shrink_y,
                interlaced: *interlaced,
            }
        }
        Layout::WebP { .. } | Layout::Other { .. } => DecodePath::Whole,
    };
    let (decoded_width, decoded_height) = decoded_size(decode_path, width, height);
    let working_bytes = working_bytes(header, decode_path, decoded_width, decoded_height, output);
    Probe {
        format: header.format,
        width,
        height,
        orientation,
        decode_path,
        decoded_width,
        decoded_height,
        fit: plan_fit(decoded_width, decoded_height, output, orientation),
        output: *output,
        working_bytes,
    }
}

/// The JPEG DCT reduction (1, 2, 4 or 8) that still leaves the decoded image
/// at least as large as the resize needs on both axes.
pub(crate) fn jpeg_scale(
    width: u32,
    height: u32,
    output: &Output,
    orientation: Orientation,
) -> u32 {
    let (need_w, need_h) = needed_source_size(width, height, output, orientation);
    [8u32, 4, 2]
        .into_iter()
        .find(|&k| width.div_ceil(k) >= need_w && height.div_ceil(k) >= need_h)
        .unwrap_or(1)
}

/// A still WebP shrunk by at most `fx`×`fy`: from the YUV planes when it is
/// opaque lossy and the factors, rounded down to even ones (the chroma
/// grid), are at least 2; otherwise libwebp's scaled decode.
pub(crate) fn webp_path(
    features: &webp::Features,
    width: u32,
    height: u32,
    fx: u32,
    fy: u32,
) -> DecodePath {
    let (even_x, even_y) = (fx & !1, fy & !1);
    if features.lossy && !features.has_alpha && even_x >= 2 && even_y >= 2 {
        DecodePath::WebpYuvPlanes {
            shrink_x: even_x,
            shrink_y: even_y,
        }
    } else {
        DecodePath::WebpScaled {
            width: width.div_ceil(fx),
            height: height.div_ceil(fy),
            alpha: features.has_alpha,
        }
    }
}

/// The size `path` decodes a `width`×`height` source to (sizes round up at
/// the edges, as every decoder here does).
fn decoded_size(path: DecodePath, width: u32, height: u32) -> (u32, u32) {
    match path {
        DecodePath::Jpeg { scale, .. } => (width.div_ceil(scale), height.div_ceil(scale)),
        DecodePath::WebpYuvPlanes { shrink_x, shrink_y }
        | DecodePath::PngRows {
            shrink_x, shrink_y, ..
        } => (width.div_ceil(shrink_x), height.div_ceil(shrink_y)),
        DecodePath::WebpScaled { width, height, .. } => (width, height),
        DecodePath::Whole => (width, height),
    }
}

/// Peak bytes the decode along `path` and the resize after it allocate.
fn working_bytes(
    header: &Header,
    path: DecodePath,
    decoded_width: u32,
    decoded_height: u32,
    output: &Output,
) -> u64 {
    let (width, height) = (u64::from(header.width), u64::from(header.height));
    let pixels = width * height;
    let decoded = u64::from(decoded_width) * u64::from(decoded_height);
    let resize = resize_scratch(decoded_height, output);
    match (&header.layout, path) {
        (Layout::Jpeg(frame), DecodePath::Jpeg { .. }) => {
            jpeg_working_bytes(frame, header, decoded_width, decoded_height) + resize
        }
        // An opaque lossy image is decoded to full-size YUV 4:2:0 planes
        // (1.5 bytes a pixel) and shrunk from them; lossless or alpha goes
        // through libwebp's scaled decode, which holds full-size planes of
        // its own (ARGB words and alpha bytes). Either way a few macroblock
        // rows, then the scaled RGBA output and its RGB copy.
        (Layout::WebP { features, .. }, DecodePath::WebpYuvPlanes { .. })
        | (Layout::WebP { features, .. }, DecodePath::WebpScaled { .. }) => {
            let planes = if !features.lossy || features.has_alpha {
                pixels * 5
            } else {
                pixels * 3 / 2
            };
            width * 1024 + planes + decoded * 7 + resize
        }
        // PNG rows stream into a box shrink: the decoder's two raw rows (at
        // most 8 bytes a pixel), the RGB row and the shrunk image, plus a
        // whole 8-bit RGBA frame when the file is interlaced.
        (_, DecodePath::PngRows { interlaced, .. }) => {
            let frame = if interlaced { pixels * 4 } else { 0 };
            width * 24 + 256 * 1024 + frame + decoded * 3 + resize
        }
        // The decoded frame, the decoders' own buffers (GIF indices, WebP
        // planes), then the 8-bit RGBA and RGB conversions.
        (layout, _) => {
            let bytes_per_pixel = match layout {
                Layout::WebP {
                    decoded_bytes_per_pixel,
                    ..
                }
                | Layout::Other {
                    decoded_bytes_per_pixel,
                } => *decoded_bytes_per_pixel,
                Layout::Jpeg(_) | Layout::Png { .. } => 4,
            };
            let extra = match header.format {
                SourceFormat::Gif | SourceFormat::WebP => pixels * 2,
                _ => 0,
            };
            pixels * bytes_per_pixel + extra + pixels * 7 + resize
        }
    }
}

/// libjpeg's buffers for a decode to `scaled_w`×`scaled_h`: the component
/// planes at the scaled size, the interleaved output and its RGB copy, and
/// for a progressive file every DCT coefficient (i16) of the full-size frame.
fn jpeg_working_bytes(frame: &JpegFrame, header: &Header, scaled_w: u32, scaled_h: u32) -> u64 {
    let (scaled_w, scaled_h) = (u64::from(scaled_w), u64::from(scaled_h));
    let (h_max, v_max) = frame.max_sampling();
    let planes: u64 = frame
        .sampling
        .iter()
        .map(|(h, v)| {
            (scaled_w * u64::from(*h)).div_ceil(u64::from(h_max))
                * (scaled_h * u64::from(*v)).div_ceil(u64::from(v_max))
                + 64
        })
        .sum();
    let interleaved = scaled_w * scaled_h * frame.sampling.len() as u64;
    let coefficients: u64 = if frame.progressive {
        frame
            .sampling
            .iter()
            .map(|(h, v)| {
                let blocks_w = (u64::from(header.width) * u64::from(*h))
                    .div_ceil(u64::from(h_max))
                    .div_ceil(8)
                    + 1;
                let blocks_h = (u64::from(header.height) * u64::from(*v))
                    .div_ceil(u64::from(v_max))
                    .div_ceil(8)
                    + 1;
                blocks_w * blocks_h * 64 * 2
            })
            .sum()
    } else {
        0
    };
    let rgb = scaled_w * scaled_h * 3;
    coefficients + planes + interleaved + rgb
}

/// The resizer's intermediate buffer (output width × decoded height, RGB,
/// f32 worst case) and the output itself.
fn resize_scratch(decoded_height: u32, output: &Output) -> u64 {
    let side = u64::from(output.width.max(output.height));
    side * u64::from(decoded_height) * 4
        + u64::from(output.width) * u64::from(output.height) * 3 * 3
        + 64 * 1024
}
