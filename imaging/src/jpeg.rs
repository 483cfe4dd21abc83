//! JPEG decoding with libjpeg-turbo (the decoder mozjpeg vendors), at a
//! reduced DCT scale when the output is smaller ("shrink on load": 1/2, 1/4
//! or 1/8 of the size for a fraction of the work, as libvips does).
//!
//! Progressive JPEGs go one step further. At 1/8 scale libjpeg rebuilds each
//! 8×8 block from its DC coefficient alone, and a progressive file sends the
//! DC coefficients in its first scans and the detail (AC) in the later, much
//! larger ones. So the decoder reads scan by scan (libjpeg's buffered-image
//! mode) and stops as soon as every coefficient the scaled inverse DCT will
//! read is final: the pixels are exactly those of a full decode, without
//! entropy-decoding the detail nobody looks at (often most of the file).
//!
//! libjpeg reports fatal errors through `error_exit` and damage it can paper
//! over (a truncated file, a broken Huffman code) as warnings, filling the
//! missing part with grey. Both are turned into a Rust unwind here, caught by
//! [`decode`] and returned as a decode error: a half-grey training image is
//! worse than a skipped one. Harmless warnings (extra bytes between markers,
//! common in camera files) are ignored, as libvips ignores them.

// This module drives libjpeg's C API directly (buffered-image mode is not in
// any safe wrapper). Every libjpeg object lives in a `Decompressor`, which
// owns the memory libjpeg points into and destroys it on every path out.
#![allow(unsafe_code)]

use crate::decode_path::{DecodePath, Decoded};
use crate::error::ImageError;
use crate::pixels::Rgb;
use mozjpeg_sys::{
    jpeg_common_struct, jpeg_component_info, jpeg_decompress_struct, jpeg_error_mgr,
    JWRN_HIT_MARKER, JWRN_HUFF_BAD_CODE, JWRN_JPEG_EOF, J_COLOR_SPACE,
};
use std::os::raw::{c_int, c_ulong};
use std::panic::{catch_unwind, AssertUnwindSafe};

// Return codes of jpeg_read_header and jpeg_consume_input (jpeglib.h; the
// -sys crate does not export them).
const JPEG_SUSPENDED: c_int = 0;
const JPEG_HEADER_OK: c_int = 1;
const JPEG_REACHED_EOI: c_int = 2;
const JPEG_SCAN_COMPLETED: c_int = 4;

/// What an unwind out of libjpeg carries.
struct LibjpegFailure(String);

/// How much of a progressive file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scans {
    /// Stop once the coefficients the scaled inverse DCT reads are final.
    UntilPixelsFinal,
    /// Read every scan (what a plain decode does; kept to check the other).
    #[cfg_attr(not(test), allow(dead_code))]
    All,
}

/// Decode `bytes` to RGB at `1/scale` of the stored size (`scale` is 1, 2, 4
/// or 8), allocating at most `max_bytes` for the output.
pub(crate) fn decode(bytes: &[u8], scale: u32, max_bytes: u64) -> Result<Decoded, ImageError> {
    decode_reading(bytes, scale, max_bytes, Scans::UntilPixelsFinal)
}

pub(crate) fn decode_reading(
    bytes: &[u8],
    scale: u32,
    max_bytes: u64,
    scans: Scans,
) -> Result<Decoded, ImageError> {
    match catch_unwind(AssertUnwindSafe(|| {
        decode_unguarded(bytes, scale, max_bytes, scans)
    })) {
        Ok(result) => result,
        Err(payload) => Err(ImageError::Decode(
            match payload.downcast::<LibjpegFailure>() {
                Ok(failure) => failure.0,
                Err(_) => "the JPEG decoder failed".into(),
            },
        )),
    }
}

fn decode_unguarded(
    bytes: &[u8],
    scale: u32,
    max_bytes: u64,
    scans: Scans,
) -> Result<Decoded, ImageError> {
    let mut decompressor = Decompressor::new(bytes);
    let cinfo = decompressor.cinfo();
    // SAFETY (for every libjpeg call below): `cinfo` was created by
    // jpeg_create_decompress with a source over `bytes`, which outlives it;
    // errors unwind out of the call instead of returning.
    if unsafe { mozjpeg_sys::jpeg_read_header(cinfo, 1) } != JPEG_HEADER_OK {
        return Err(ImageError::Decode("the JPEG holds no image".into()));
    }
    let cmyk = matches!(
        cinfo.jpeg_color_space,
        J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK
    );
    // libjpeg converts grey and YCbCr to RGB itself; CMYK comes out as stored.
    cinfo.out_color_space = if cmyk {
        J_COLOR_SPACE::JCS_CMYK
    } else {
        J_COLOR_SPACE::JCS_RGB
    };
    cinfo.scale_num = 1;
    cinfo.scale_denom = scale.clamp(1, 8);
    let multi_scan = unsafe { mozjpeg_sys::jpeg_has_multiple_scans(cinfo) } != 0;
    let stop_early = scans == Scans::UntilPixelsFinal && multi_scan;
    if stop_early {
        cinfo.buffered_image = 1;
        // Smoothing guesses missing AC coefficients; the ones we stop
        // without are never read by the inverse DCT, so it would only cost.
        cinfo.do_block_smoothing = 0;
    }
    unsafe { mozjpeg_sys::jpeg_start_decompress(cinfo) };
    let (width, height) = (cinfo.output_width as usize, cinfo.output_height as usize);
    let channels = cinfo.output_components as usize;
    let len = width * height * channels;
    if len as u64 > max_bytes || len == 0 {
        return Err(ImageError::Decode(format!(
            "the JPEG decodes to an unexpected size ({width}×{height})"
        )));
    }
    if stop_early {
        let needed = NeededCoefficients::at_scale(cinfo, cinfo.scale_denom);
        loop {
            match unsafe { mozjpeg_sys::jpeg_consume_input(cinfo) } {
                JPEG_SCAN_COMPLETED if needed.are_final(cinfo) => break,
                JPEG_REACHED_EOI => break,
                // The memory source never suspends; libjpeg would only say
                // this if its input stopped, which the warning hook reports.
                JPEG_SUSPENDED => {
                    return Err(ImageError::Decode("the JPEG file ends early".into()))
                }
                _ => {}
            }
        }
        unsafe { mozjpeg_sys::jpeg_start_output(cinfo, cinfo.input_scan_number) };
    }
    let mut raw = vec![0u8; len];
    let mut rows: Vec<*mut u8> = raw
        .chunks_exact_mut(width * channels)
        .map(<[u8]>::as_mut_ptr)
        .collect();
    while (cinfo.output_scanline as usize) < height {
        let next = cinfo.output_scanline as usize;
        let read = unsafe {
            mozjpeg_sys::jpeg_read_scanlines(
                cinfo,
                rows[next..].as_mut_ptr(),
                (height - next) as u32,
            )
        };
        if read == 0 {
            return Err(ImageError::Decode("the JPEG data is incomplete".into()));
        }
    }
    if !stop_early {
        // Reads to the end marker, so damage after the last row is still reported.
        unsafe { mozjpeg_sys::jpeg_finish_decompress(cinfo) };
    }
    drop(rows);
    let pixels = if cmyk {
        inverted_cmyk_to_rgb(&raw)
    } else {
        raw
    };
    Ok(Decoded {
        image: Rgb {
            width: width as u32,
            height: height as u32,
            pixels,
        },
        path: DecodePath::Jpeg {
            scale: cinfo.scale_denom,
            multi_scan,
        },
    })
}

/// libjpeg hands CMYK (and YCCK, converted) over as stored. Adobe's files,
/// nearly all CMYK JPEGs in the wild, store inverted inks (255 = no ink), so
/// each channel is simply value × K / 255.
fn inverted_cmyk_to_rgb(raw: &[u8]) -> Vec<u8> {
    raw.chunks_exact(4)
        .flat_map(|cmyk| {
            let k = u32::from(cmyk[3]);
            let channel = |stored: u8| ((u32::from(stored) * k + 127) / 255) as u8;
            [channel(cmyk[0]), channel(cmyk[1]), channel(cmyk[2])]
        })
        .collect()
}

/// Which DCT coefficients of each component the scaled inverse DCT reads.
struct NeededCoefficients {
    /// Per component: only the DC coefficient (a 1×1 inverse DCT), or all 64.
    dc_only: Vec<bool>,
}

impl NeededCoefficients {
    /// libjpeg-turbo picks each component's inverse-DCT size in
    /// `jdmaster.c`: the 1/8 scale gives 1×1 blocks, except that a
    /// subsampled component is scaled up by powers of two (instead of being
    /// upsampled) while its sampling factors divide the largest ones. A
    /// 1×1 block reads only DC; any larger one is treated as reading all 64
    /// coefficients (true for 8×8, safe for 2×2 and 4×4).
    fn at_scale(cinfo: &jpeg_decompress_struct, scale_denom: u32) -> Self {
        let (max_h, max_v) = (cinfo.max_h_samp_factor, cinfo.max_v_samp_factor);
        let dc_only = components(cinfo)
            .iter()
            .map(|component| {
                let scaled_up = max_h % (component.h_samp_factor * 2) == 0
                    && max_v % (component.v_samp_factor * 2) == 0;
                scale_denom == 8 && !scaled_up
            })
            .collect();
        Self { dc_only }
    }

    /// Whether every needed coefficient has all its bits (libjpeg's
    /// `coef_bits[component][k]` is the bit still missing, 0 when final, -1
    /// before any scan has carried it).
    fn are_final(&self, cinfo: &jpeg_decompress_struct) -> bool {
        if cinfo.coef_bits.is_null() {
            return false;
        }
        // SAFETY: in progressive mode libjpeg allocates coef_bits as
        // 2 × num_components rows of 64 ints (current and previous state)
        // before the first scan; we read the first num_components rows.
        let bits = unsafe {
            std::slice::from_raw_parts(cinfo.coef_bits as *const [c_int; 64], self.dc_only.len())
        };
        bits.iter().zip(&self.dc_only).all(|(component, &dc_only)| {
            let needed = if dc_only {
                &component[..1]
            } else {
                &component[..]
            };
            needed.iter().all(|&missing| missing == 0)
        })
    }
}

fn components(cinfo: &jpeg_decompress_struct) -> &[jpeg_component_info] {
    // SAFETY: after jpeg_read_header, comp_info points at num_components
    // entries owned by the decompressor.
    unsafe { std::slice::from_raw_parts(cinfo.comp_info, cinfo.num_components.max(0) as usize) }
}

/// A libjpeg decompressor over borrowed bytes, destroyed on drop (also when
/// an error unwinds out of libjpeg: its memory pools are still consistent).
struct Decompressor<'bytes> {
    cinfo: Box<jpeg_decompress_struct>,
    // libjpeg keeps a pointer to this; boxed so it never moves.
    _errors: Box<jpeg_error_mgr>,
    _bytes: std::marker::PhantomData<&'bytes [u8]>,
}

impl<'bytes> Decompressor<'bytes> {
    fn new(bytes: &'bytes [u8]) -> Self {
        let mut errors = Box::new(strict_error_manager());
        // SAFETY: a zeroed decompress struct is what jpeg_create_decompress
        // expects (it fills it in); the error manager is installed first, as
        // libjpeg requires, and is boxed so its address stays valid.
        let mut cinfo: Box<jpeg_decompress_struct> = Box::new(unsafe { std::mem::zeroed() });
        cinfo.common.err = &mut *errors;
        unsafe {
            mozjpeg_sys::jpeg_create_decompress(&mut *cinfo);
            mozjpeg_sys::jpeg_mem_src(&mut cinfo, bytes.as_ptr(), bytes.len() as c_ulong);
        }
        Self {
            cinfo,
            _errors: errors,
            _bytes: std::marker::PhantomData,
        }
    }

    fn cinfo(&mut self) -> &mut jpeg_decompress_struct {
        &mut self.cinfo
    }
}

impl Drop for Decompressor<'_> {
    fn drop(&mut self) {
        // SAFETY: created in `new`; destroying frees every pool libjpeg allocated.
        unsafe { mozjpeg_sys::jpeg_destroy_decompress(&mut self.cinfo) };
    }
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
    std::panic::resume_unwind(Box::new(LibjpegFailure(format!(
        "the JPEG data is damaged (libjpeg error {code})"
    ))));
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
