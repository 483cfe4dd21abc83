//! Recognising an image and reading its header, without decoding pixels.
//!
//! The format comes from the bytes (magic numbers), never from the URL or a
//! content type. The header gives the size, the EXIF orientation and, for
//! JPEG, the frame layout — enough to refuse a decompression bomb and to
//! estimate the memory decoding will take before any of it is allocated.

use super::ImageError;
use image::metadata::Orientation;
use image::ImageDecoder;
use std::io::{BufRead, BufReader, Read, Seek};
use zipfleet_shared::spec::OutputSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
    WebP,
    Bmp,
}

impl SourceFormat {
    fn image_format(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::Gif => image::ImageFormat::Gif,
            Self::WebP => image::ImageFormat::WebP,
            Self::Bmp => image::ImageFormat::Bmp,
        }
    }
}

/// What the header says.
#[derive(Debug, Clone)]
pub struct Probe {
    pub format: SourceFormat,
    /// Stored size (before orientation).
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
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

pub(crate) fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
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

/// Read the header of the image at `reader` and estimate its decode cost.
pub fn probe<R: Read + Seek>(
    reader: R,
    output: &OutputSpec,
    max_pixels: u64,
) -> Result<Probe, ImageError> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let head = reader
        .fill_buf()
        .map_err(|err| ImageError::Decode(err.to_string()))?;
    let format = sniff(head)?;
    let webp = (format == SourceFormat::WebP).then(|| WebpLayout::read(head));
    let png_interlaced =
        format == SourceFormat::Png && head.get(28).is_some_and(|&method| method != 0);
    let mut probe = match format {
        SourceFormat::Jpeg => probe_jpeg(reader, output)?,
        other => probe_with_image(reader, other, output)?,
    };
    if let Some(layout) = webp.filter(|layout| !layout.animated) {
        probe.working_bytes = layout.working_bytes(&probe, output);
    }
    if format == SourceFormat::Png {
        probe.working_bytes = png_working_bytes(&probe, png_interlaced, output);
    }
    let pixels = u64::from(probe.width) * u64::from(probe.height);
    if pixels > max_pixels {
        return Err(ImageError::TooManyPixels {
            width: probe.width.into(),
            height: probe.height.into(),
            limit_mp: max_pixels / 1_000_000,
        });
    }
    if probe.width == 0 || probe.height == 0 {
        return Err(ImageError::Decode("the image has no pixels".into()));
    }
    Ok(probe)
}

fn probe_with_image<R: BufRead + Seek>(
    reader: R,
    format: SourceFormat,
    output: &OutputSpec,
) -> Result<Probe, ImageError> {
    let mut image_reader = image::ImageReader::with_format(reader, format.image_format());
    // Header parsing only; the real limits are set at decode time.
    image_reader.no_limits();
    let mut decoder = image_reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let pixels = u64::from(width) * u64::from(height);
    let decoded = pixels * decoder.color_type().bytes_per_pixel() as u64;
    // Decoders' own buffers (GIF indices, WebP planes), then the 8-bit RGBA
    // and RGB conversions, then the resizer's intermediate rows.
    let extra = match format {
        SourceFormat::Gif => pixels * 2,
        SourceFormat::WebP => pixels * 2,
        _ => 0,
    };
    let working_bytes = decoded + extra + pixels * 7 + resize_scratch(height, output);
    Ok(Probe {
        format,
        width,
        height,
        orientation,
        working_bytes,
    })
}

/// What the RIFF chunks at the start of a WebP say about how libwebp will
/// decode it.
#[derive(Debug, Clone, Copy)]
struct WebpLayout {
    animated: bool,
    /// Lossless pixels (VP8L) or a separate alpha plane: libwebp then holds a
    /// full-size plane while decoding. Assumed when the header doesn't tell.
    full_size_plane: bool,
}

impl WebpLayout {
    fn read(head: &[u8]) -> Self {
        let animated = head.len() > 20 && &head[12..16] == b"VP8X" && head[20] & 0x02 != 0;
        let mut offset = 12;
        while offset + 8 <= head.len() {
            let fourcc = &head[offset..offset + 4];
            match fourcc {
                b"VP8 " => {
                    return Self {
                        animated,
                        full_size_plane: false,
                    }
                }
                b"VP8L" | b"ALPH" => {
                    return Self {
                        animated,
                        full_size_plane: true,
                    }
                }
                _ => {}
            }
            let size = u32::from_le_bytes([
                head[offset + 4],
                head[offset + 5],
                head[offset + 6],
                head[offset + 7],
            ]) as usize;
            offset = offset.saturating_add(8).saturating_add(size + (size & 1));
        }
        Self {
            animated,
            full_size_plane: true,
        }
    }

    /// An opaque lossy image is decoded to full-size YUV 4:2:0 planes (1.5
    /// bytes a pixel) and shrunk from them; lossless or alpha goes through
    /// libwebp's scaled decode, which holds full-size planes of its own (ARGB
    /// words and alpha bytes). Either way a few macroblock rows, then the
    /// scaled RGBA output and its RGB copy.
    fn working_bytes(self, probe: &Probe, output: &OutputSpec) -> u64 {
        let (fx, fy) = super::resize::shrink_on_load_factors(
            probe.width,
            probe.height,
            output,
            probe.orientation,
        );
        let scaled = u64::from(probe.width.div_ceil(fx)) * u64::from(probe.height.div_ceil(fy));
        let pixels = u64::from(probe.width) * u64::from(probe.height);
        let planes = if self.full_size_plane {
            pixels * 5
        } else {
            pixels * 3 / 2
        };
        u64::from(probe.width) * 1024
            + planes
            + scaled * 7
            + resize_scratch(probe.height.div_ceil(fy), output)
    }
}

/// PNG rows stream into a box shrink: the decoder's two raw rows (at most 8
/// bytes a pixel), the RGB row and the shrunk image, plus a whole 8-bit RGBA
/// frame when the file is interlaced.
fn png_working_bytes(probe: &Probe, interlaced: bool, output: &OutputSpec) -> u64 {
    let (fx, fy) =
        super::resize::shrink_on_load_factors(probe.width, probe.height, output, probe.orientation);
    let shrunk_height = probe.height.div_ceil(fy);
    let shrunk = u64::from(probe.width.div_ceil(fx)) * u64::from(shrunk_height);
    let width = u64::from(probe.width);
    let frame = if interlaced {
        width * u64::from(probe.height) * 4
    } else {
        0
    };
    width * 24 + 256 * 1024 + frame + shrunk * 3 + resize_scratch(shrunk_height, output)
}

/// The frame header of a JPEG: enough to size the decode.
fn probe_jpeg<R: BufRead>(mut reader: R, output: &OutputSpec) -> Result<Probe, ImageError> {
    let mut exif: Option<Vec<u8>> = None;
    let mut marker = [0u8; 2];
    reader.read_exact(&mut marker).map_err(truncated)?; // SOI
    loop {
        // Skip fill bytes to the next marker.
        let mut byte = [0u8; 1];
        reader.read_exact(&mut byte).map_err(truncated)?;
        if byte[0] != 0xFF {
            return Err(ImageError::Decode("no frame header found".into()));
        }
        while byte[0] == 0xFF {
            reader.read_exact(&mut byte).map_err(truncated)?;
        }
        let code = byte[0];
        if matches!(code, 0x01 | 0xD0..=0xD7) {
            continue; // markers without a length
        }
        if code == 0xD9 || code == 0xDA {
            return Err(ImageError::Decode(
                "no frame header before the image data".into(),
            ));
        }
        let mut length = [0u8; 2];
        reader.read_exact(&mut length).map_err(truncated)?;
        let length = usize::from(u16::from_be_bytes(length))
            .checked_sub(2)
            .ok_or_else(|| ImageError::Decode("bad segment length".into()))?;
        let mut segment = vec![0u8; length];
        reader.read_exact(&mut segment).map_err(truncated)?;
        match code {
            0xE1 if exif.is_none() && segment.starts_with(b"Exif\0\0") => {
                exif = Some(segment[6..].to_vec())
            }
            // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC)
            0xC0..=0xCF if !matches!(code, 0xC4 | 0xC8 | 0xCC) => {
                if matches!(code, 0xC3 | 0xC7 | 0xCB | 0xCF) {
                    return Err(ImageError::UnsupportedFormat(
                        "this file is a lossless JPEG, which zipfleet does not read".into(),
                    ));
                }
                if matches!(code, 0xC9..=0xCB | 0xCD..=0xCF) {
                    return Err(ImageError::UnsupportedFormat(
                        "this file is an arithmetic-coded JPEG, which zipfleet does not read"
                            .into(),
                    ));
                }
                let progressive = matches!(code, 0xC2 | 0xC6 | 0xCA | 0xCE);
                return jpeg_probe_from_frame(&segment, progressive, exif.as_deref(), output);
            }
            _ => {}
        }
    }
}

fn jpeg_probe_from_frame(
    sof: &[u8],
    progressive: bool,
    exif: Option<&[u8]>,
    output: &OutputSpec,
) -> Result<Probe, ImageError> {
    if sof.len() < 6 {
        return Err(ImageError::Decode("frame header too short".into()));
    }
    let height = u32::from(u16::from_be_bytes([sof[1], sof[2]]));
    let width = u32::from(u16::from_be_bytes([sof[3], sof[4]]));
    let count = usize::from(sof[5]);
    if !matches!(count, 1 | 3 | 4) || sof.len() < 6 + 3 * count {
        return Err(ImageError::Decode(format!(
            "unsupported JPEG with {count} colour components"
        )));
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Decode("the JPEG declares no size".into()));
    }
    let sampling: Vec<(u32, u32)> = (0..count)
        .map(|i| {
            let factors = sof[6 + 3 * i + 1];
            (
                u32::from(factors >> 4).max(1),
                u32::from(factors & 0x0F).max(1),
            )
        })
        .collect();
    let h_max = sampling.iter().map(|s| s.0).max().unwrap_or(1);
    let v_max = sampling.iter().map(|s| s.1).max().unwrap_or(1);

    let orientation = exif
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let scale = jpeg_scale(width, height, output, orientation);
    let (scaled_w, scaled_h) = (
        u64::from(width.div_ceil(scale)),
        u64::from(height.div_ceil(scale)),
    );
    // Component planes at the scaled size and the interleaved output.
    let planes: u64 = sampling
        .iter()
        .map(|(h, v)| {
            (scaled_w * u64::from(*h)).div_ceil(u64::from(h_max))
                * (scaled_h * u64::from(*v)).div_ceil(u64::from(v_max))
                + 64
        })
        .sum();
    let interleaved = scaled_w * scaled_h * count as u64;
    // A progressive JPEG keeps every DCT coefficient (i16) of the full-size frame.
    let coefficients: u64 = if progressive {
        sampling
            .iter()
            .map(|(h, v)| {
                let blocks_w = (u64::from(width) * u64::from(*h))
                    .div_ceil(u64::from(h_max))
                    .div_ceil(8)
                    + 1;
                let blocks_h = (u64::from(height) * u64::from(*v))
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
    let working_bytes =
        coefficients + planes + interleaved + rgb + resize_scratch(scaled_h as u32, output);
    Ok(Probe {
        format: SourceFormat::Jpeg,
        width,
        height,
        orientation,
        working_bytes,
    })
}

/// The JPEG DCT reduction (1, 2, 4 or 8) that still leaves the decoded image
/// at least as large as the resize needs on both axes.
pub(crate) fn jpeg_scale(
    width: u32,
    height: u32,
    output: &OutputSpec,
    orientation: image::metadata::Orientation,
) -> u32 {
    let (need_w, need_h) = super::resize::needed_source_size(width, height, output, orientation);
    [8u32, 4, 2]
        .into_iter()
        .find(|&k| width.div_ceil(k) >= need_w && height.div_ceil(k) >= need_h)
        .unwrap_or(1)
}

/// The resizer's intermediate buffer (output width × source height, RGB, f32
/// worst case) and the output itself.
fn resize_scratch(source_height: u32, output: &OutputSpec) -> u64 {
    let side = u64::from(output.width.max(output.height));
    side * u64::from(source_height) * 4
        + u64::from(output.width) * u64::from(output.height) * 3 * 3
        + 64 * 1024
}

fn truncated(err: std::io::Error) -> ImageError {
    ImageError::Decode(format!("the header is incomplete ({err})"))
}

pub(crate) fn decode_error(err: image::ImageError) -> ImageError {
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
