//! Still WebP decoding with libwebp, scaled while decoding: libwebp's
//! rescaler works on the decoded rows as they come, so a 12 MP WebP becomes a
//! few hundred thousand pixels without the full-size RGB image ever existing
//! (the same call libvips makes for shrink-on-load). Animated WebPs are not
//! handled here; the caller sends them to the `image` crate for their first
//! frame.

// FFI to libwebp: the decoder writes into a buffer we own and size.
#![allow(unsafe_code)]

use super::{ImageError, Rgb};
use libwebp_sys::{VP8StatusCode, WebPBitstreamFeatures, WebPDecoderConfig, WEBP_CSP_MODE};

/// What the bitstream header says.
pub(super) struct Features {
    pub has_alpha: bool,
    pub animated: bool,
}

pub(super) fn features(bytes: &[u8]) -> Result<Features, ImageError> {
    let mut features = std::mem::MaybeUninit::<WebPBitstreamFeatures>::zeroed();
    // SAFETY: `bytes` is a valid slice for its length; libwebp writes the
    // plain-data features struct and reads nothing past `bytes.len()`.
    let status = unsafe { libwebp_sys::WebPGetFeatures(bytes.as_ptr(), bytes.len(), features.as_mut_ptr()) };
    check(status)?;
    // SAFETY: zero-initialised plain data, filled in by a successful call.
    let features = unsafe { features.assume_init() };
    Ok(Features { has_alpha: features.has_alpha != 0, animated: features.has_animation != 0 })
}

/// Decode a still WebP to `width`×`height` (at most its stored size), alpha
/// composited over white.
pub(super) fn decode_scaled(bytes: &[u8], width: u32, height: u32, has_alpha: bool) -> Result<Rgb, ImageError> {
    let channels: usize = if has_alpha { 4 } else { 3 };
    let stride = width as usize * channels;
    let mut pixels = vec![0u8; stride * height as usize];

    let mut config = std::mem::MaybeUninit::<WebPDecoderConfig>::zeroed();
    // SAFETY: WebPInitDecoderConfig initialises the whole struct (it is plain
    // data; zeroed is already a valid value).
    if !unsafe { libwebp_sys::WebPInitDecoderConfig(config.as_mut_ptr()) } {
        return Err(ImageError::Decode("libwebp version mismatch".into()));
    }
    // SAFETY: initialised just above.
    let mut config = unsafe { config.assume_init() };
    config.options.use_threads = 0;
    config.options.use_scaling = 1;
    config.options.scaled_width = width as i32;
    config.options.scaled_height = height as i32;
    config.output.colorspace = if has_alpha { WEBP_CSP_MODE::MODE_RGBA } else { WEBP_CSP_MODE::MODE_RGB };
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = pixels.as_mut_ptr();
    config.output.u.RGBA.stride = stride as i32;
    config.output.u.RGBA.size = pixels.len();
    // SAFETY: the output buffer is `pixels`, alive and exactly stride × height
    // bytes, as declared in `config`; libwebp checks that size against the
    // scaled dimensions before writing. With external memory it allocates no
    // output of its own, so there is nothing to free afterwards.
    let status = unsafe { libwebp_sys::WebPDecode(bytes.as_ptr(), bytes.len(), &mut config) };
    check(status)?;
    if config.output.width != width as i32 || config.output.height != height as i32 {
        return Err(ImageError::Decode("libwebp returned an unexpected size".into()));
    }
    let pixels = if has_alpha {
        pixels.chunks_exact(4).flat_map(super::decode::over_white).collect()
    } else {
        pixels
    };
    Ok(Rgb { width, height, pixels })
}

fn check(status: VP8StatusCode) -> Result<(), ImageError> {
    match status {
        VP8StatusCode::VP8_STATUS_OK => Ok(()),
        VP8StatusCode::VP8_STATUS_UNSUPPORTED_FEATURE => Err(ImageError::UnsupportedFormat("this WebP uses a feature zipfleet cannot read".into())),
        VP8StatusCode::VP8_STATUS_NOT_ENOUGH_DATA => Err(ImageError::Decode("the WebP file ends early".into())),
        VP8StatusCode::VP8_STATUS_OUT_OF_MEMORY => Err(ImageError::OverBudget("ran out of memory decoding the WebP".into())),
        other => Err(ImageError::Decode(format!("the WebP data is damaged ({other:?})"))),
    }
}
