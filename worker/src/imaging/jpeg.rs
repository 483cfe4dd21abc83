//! JPEG decoding with libjpeg-turbo (the decoder mozjpeg vendors), at a
//! reduced DCT scale when the output is smaller ("shrink on load": 1/2, 1/4
//! or 1/8 of the size for a fraction of the work, as libvips does).
//!
//! libjpeg reports fatal errors through `error_exit` and damage it can paper
//! over (a truncated file, a broken Huffman code) as warnings, filling the
//! missing part with grey. Both are turned into a Rust unwind here, caught by
//! [`decode`] and returned as a decode error: a half-grey training image is
//! worse than a skipped one. Harmless warnings (extra bytes between markers,
//! common in camera files) are ignored, as libvips ignores them.

// The one unsafe step: initialising libjpeg's error manager and reading the
// message code out of it. Everything else goes through mozjpeg's safe API.
#![allow(unsafe_code)]

use super::{ImageError, Rgb};
use mozjpeg::decompress::DecompressBuilder;
use mozjpeg::Format;
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, JWRN_HIT_MARKER, JWRN_HUFF_BAD_CODE, JWRN_JPEG_EOF};
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What an unwind out of libjpeg carries.
struct LibjpegFailure(String);

/// Decode `bytes` to RGB at `1/scale` of the stored size (`scale` is 1, 2, 4 or 8).
pub(super) fn decode(bytes: &[u8], scale: u32, max_bytes: u64) -> Result<Rgb, ImageError> {
    match catch_unwind(AssertUnwindSafe(|| decode_unguarded(bytes, scale, max_bytes))) {
        Ok(result) => result,
        Err(payload) => Err(ImageError::Decode(match payload.downcast::<LibjpegFailure>() {
            Ok(failure) => failure.0,
            Err(_) => "the JPEG decoder failed".into(),
        })),
    }
}

fn decode_unguarded(bytes: &[u8], scale: u32, max_bytes: u64) -> Result<Rgb, ImageError> {
    let io_error = |err: std::io::Error| ImageError::Decode(format!("the JPEG data is incomplete ({err})"));
    let mut decompress = DecompressBuilder::new().with_err(strict_error_manager()).from_mem(bytes).map_err(io_error)?;
    let numerator = match scale {
        8 => 1,
        4 => 2,
        2 => 4,
        _ => 8,
    };
    decompress.scale(numerator);
    let format = decompress.image().map_err(io_error)?;
    let (mut started, channels) = match format {
        Format::RGB(started) => (started, 3),
        Format::Gray(started) => (started, 1),
        Format::CMYK(started) => (started, 4),
    };
    let (width, height) = (started.width(), started.height());
    let len = width * height * channels;
    if len as u64 > max_bytes || len == 0 {
        return Err(ImageError::Decode(format!("the JPEG decodes to an unexpected size ({width}×{height})")));
    }
    let mut raw = vec![0u8; len];
    started.read_scanlines_into(&mut raw).map_err(io_error)?;
    started.finish().map_err(io_error)?;
    let pixels = match channels {
        3 => raw,
        1 => raw.iter().flat_map(|&l| [l, l, l]).collect(),
        // libjpeg hands CMYK (and YCCK, converted) over as stored. Adobe's
        // files, nearly all CMYK JPEGs in the wild, store inverted inks
        // (255 = no ink), so each channel is simply value × K / 255.
        _ => raw
            .chunks_exact(4)
            .flat_map(|cmyk| {
                let k = u32::from(cmyk[3]);
                let channel = |stored: u8| ((u32::from(stored) * k + 127) / 255) as u8;
                [channel(cmyk[0]), channel(cmyk[1]), channel(cmyk[2])]
            })
            .collect(),
    };
    Ok(Rgb { width: width as u32, height: height as u32, pixels })
}

fn strict_error_manager() -> jpeg_error_mgr {
    // SAFETY: jpeg_std_error fills in every field of the (zeroed, plain-data)
    // struct with libjpeg's defaults; we then replace two function pointers.
    let mut manager: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut manager) };
    manager.error_exit = Some(fail);
    manager.emit_message = Some(on_message);
    manager
}

/// The message code of the error or warning being reported.
fn message_code(cinfo: &jpeg_common_struct) -> c_int {
    // SAFETY: libjpeg only calls the error manager's hooks with `err` pointing
    // at the manager installed above, which the decompressor owns and keeps alive.
    unsafe { cinfo.err.as_ref() }.map_or(0, |err| err.msg_code)
}

extern "C-unwind" fn fail(cinfo: &mut jpeg_common_struct) {
    let code = message_code(cinfo);
    std::panic::resume_unwind(Box::new(LibjpegFailure(format!("the JPEG data is damaged (libjpeg error {code})"))));
}

extern "C-unwind" fn on_message(cinfo: &mut jpeg_common_struct, level: c_int) {
    if level >= 0 {
        return; // trace output, off by default
    }
    let code = message_code(cinfo);
    let description = match code {
        c if c == JWRN_JPEG_EOF as c_int => "the JPEG file ends early",
        c if c == JWRN_HIT_MARKER as c_int => "the JPEG data stops in the middle of the image",
        c if c == JWRN_HUFF_BAD_CODE as c_int => "the JPEG data is corrupt",
        _ => return, // harmless: the image decodes fully
    };
    std::panic::resume_unwind(Box::new(LibjpegFailure(description.into())));
}
