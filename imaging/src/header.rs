//! Reading an image's header, without decoding pixels: the format (from the
//! magic numbers), the stored size, the EXIF orientation, and what the plan
//! needs to choose a decoder and size its memory — the JPEG frame layout,
//! whether a PNG is interlaced, a WebP's features (read once, by libwebp).
//! Every header is parsed here and nowhere else.

use crate::error::{from_image_crate, ImageError};
use crate::format::{sniff, SourceFormat};
use crate::webp;
use image::metadata::Orientation;
use image::ImageDecoder;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

/// What the header says.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub format: SourceFormat,
    /// Stored size (before orientation).
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
    pub layout: Layout,
}

/// The format-specific facts the plan decides from.
#[derive(Debug, Clone)]
pub(crate) enum Layout {
    Jpeg(JpegFrame),
    Png {
        interlaced: bool,
    },
    WebP {
        features: webp::Features,
        /// Bytes per pixel of the `image` crate's decode (animated WebP).
        decoded_bytes_per_pixel: u64,
    },
    /// GIF and BMP: decoded whole by the `image` crate.
    Other {
        decoded_bytes_per_pixel: u64,
    },
}

/// A JPEG's frame header.
#[derive(Debug, Clone)]
pub(crate) struct JpegFrame {
    /// Per colour component: horizontal and vertical sampling factors.
    pub sampling: Vec<(u32, u32)>,
    /// A progressive frame (SOF2, SOF6...): scans of coefficient bands.
    pub progressive: bool,
}

impl JpegFrame {
    /// The largest horizontal and vertical sampling factors.
    pub(crate) fn max_sampling(&self) -> (u32, u32) {
        (
            self.sampling.iter().map(|s| s.0).max().unwrap_or(1),
            self.sampling.iter().map(|s| s.1).max().unwrap_or(1),
        )
    }
}

/// Read the header of the image at `reader`.
pub(crate) fn read<R: Read + Seek>(reader: R) -> Result<Header, ImageError> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let head = reader
        .fill_buf()
        .map_err(|err| ImageError::Decode(err.to_string()))?;
    let format = sniff(head)?;
    match format {
        SourceFormat::Jpeg => read_jpeg(reader),
        SourceFormat::Png => {
            let interlaced = head.get(28).is_some_and(|&method| method != 0);
            let (mut header, _) = read_with_image(reader, format)?;
            header.layout = Layout::Png { interlaced };
            Ok(header)
        }
        SourceFormat::WebP => {
            let features = match webp::features(head)? {
                Some(features) => features,
                None => webp_features_from_whole_file(&mut reader)?,
            };
            let (mut header, decoded_bytes_per_pixel) = read_with_image(reader, format)?;
            header.layout = Layout::WebP {
                features,
                decoded_bytes_per_pixel,
            };
            Ok(header)
        }
        SourceFormat::Gif | SourceFormat::Bmp => {
            let (header, _) = read_with_image(reader, format)?;
            Ok(header)
        }
    }
}

/// When the chunks before a WebP's image data outgrow the head: the whole
/// file, then back to its start for the `image` crate's header read.
fn webp_features_from_whole_file<R: Read + Seek>(
    reader: &mut BufReader<R>,
) -> Result<webp::Features, ImageError> {
    let io_error = |err: std::io::Error| ImageError::Decode(err.to_string());
    let mut whole = Vec::new();
    reader.seek(SeekFrom::Start(0)).map_err(io_error)?;
    reader.read_to_end(&mut whole).map_err(io_error)?;
    reader.seek(SeekFrom::Start(0)).map_err(io_error)?;
    webp::features(&whole)?.ok_or_else(|| ImageError::Decode("the WebP file ends early".into()))
}

/// Size, orientation and decoded bytes per pixel through the `image` crate's
/// header parsing; the layout is the whole-decode one until the caller
/// knows better.
fn read_with_image<R: BufRead + Seek>(
    reader: R,
    format: SourceFormat,
) -> Result<(Header, u64), ImageError> {
    let mut image_reader = image::ImageReader::with_format(reader, format.image_format());
    // Header parsing only; the real limits are set at decode time.
    image_reader.no_limits();
    let mut decoder = image_reader.into_decoder().map_err(from_image_crate)?;
    let (width, height) = decoder.dimensions();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let decoded_bytes_per_pixel = decoder.color_type().bytes_per_pixel() as u64;
    let header = Header {
        format,
        width,
        height,
        orientation,
        layout: Layout::Other {
            decoded_bytes_per_pixel,
        },
    };
    Ok((header, decoded_bytes_per_pixel))
}

/// The frame header of a JPEG: enough to size the decode.
fn read_jpeg<R: BufRead>(mut reader: R) -> Result<Header, ImageError> {
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
                return jpeg_header_from_frame(&segment, progressive, exif.as_deref());
            }
            _ => {}
        }
    }
}

fn jpeg_header_from_frame(
    sof: &[u8],
    progressive: bool,
    exif: Option<&[u8]>,
) -> Result<Header, ImageError> {
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
    let orientation = exif
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    Ok(Header {
        format: SourceFormat::Jpeg,
        width,
        height,
        orientation,
        layout: Layout::Jpeg(JpegFrame {
            sampling,
            progressive,
        }),
    })
}

fn truncated(err: std::io::Error) -> ImageError {
    ImageError::Decode(format!("the header is incomplete ({err})"))
}
