//! Still WebP with libwebp: the header's features (read once, by the
//! probe) and the two decoders the plan chooses between. Animated WebPs are
//! not decoded here; the plan sends them to the `image` crate for their
//! first frame.
//!
//! - Opaque lossy WebPs (nearly all photos) shrunk by at least 2 on each
//!   axis: libwebp decodes to its native YUV 4:2:0 planes (no colour
//!   conversion, no rescaling), the planes are box-shrunk here (an even
//!   factor, so each 2×2 luma block keeps its one chroma sample) and only
//!   the small result is converted to RGB. libwebp's own rescaler, which
//!   libvips uses, is plain C per sample and cost ~12% of the decode.
//! - Everything else (alpha, lossless, small shrinks): libwebp's scaled
//!   decode, which rescales rows as they come, so the full-size RGB image
//!   never exists (the call libvips makes for shrink-on-load).

// FFI to libwebp: the decoder writes into a buffer we own and size.
#![allow(unsafe_code)]

use crate::decode_path::{DecodePath, Decoded};
use crate::error::ImageError;
use crate::pixels::{over_white, Rgb};
use libwebp_sys::{VP8StatusCode, WebPBitstreamFeatures, WebPDecoderConfig, WEBP_CSP_MODE};

/// What the bitstream header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Features {
    pub has_alpha: bool,
    pub animated: bool,
    /// VP8 (lossy) rather than VP8L (lossless) or a mix.
    pub lossy: bool,
}

/// The features of the WebP whose first bytes are `head`, or `None` when
/// libwebp needs more of the file to tell (optional chunks before the image
/// data, such as a large ICC profile, can outgrow any fixed head).
pub(crate) fn features(head: &[u8]) -> Result<Option<Features>, ImageError> {
    let mut features = std::mem::MaybeUninit::<WebPBitstreamFeatures>::zeroed();
    // SAFETY: `head` is a valid slice for its length; libwebp writes the
    // plain-data features struct and reads nothing past `head.len()`.
    let status =
        unsafe { libwebp_sys::WebPGetFeatures(head.as_ptr(), head.len(), features.as_mut_ptr()) };
    if status == VP8StatusCode::VP8_STATUS_NOT_ENOUGH_DATA {
        return Ok(None);
    }
    check(status)?;
    // SAFETY: zero-initialised plain data, filled in by a successful call.
    let features = unsafe { features.assume_init() };
    Ok(Some(Features {
        has_alpha: features.has_alpha != 0,
        animated: features.has_animation != 0,
        lossy: features.format == 1,
    }))
}

fn decoder_config() -> Result<WebPDecoderConfig, ImageError> {
    let mut config = std::mem::MaybeUninit::<WebPDecoderConfig>::zeroed();
    // SAFETY: WebPInitDecoderConfig initialises the whole struct (it is plain
    // data; zeroed is already a valid value).
    if !unsafe { libwebp_sys::WebPInitDecoderConfig(config.as_mut_ptr()) } {
        return Err(ImageError::Decode("libwebp version mismatch".into()));
    }
    // SAFETY: initialised just above.
    let mut config = unsafe { config.assume_init() };
    config.options.use_threads = 0;
    Ok(config)
}

/// Decode a `width`×`height` still WebP to its full-size YUV 4:2:0 planes,
/// box-shrink them by the even factors `fx`×`fy` (sizes round up at the
/// edges), and convert the small result to RGB.
pub(crate) fn decode_yuv_shrunk(
    bytes: &[u8],
    width: u32,
    height: u32,
    fx: u32,
    fy: u32,
) -> Result<Decoded, ImageError> {
    let (w, h) = (width as usize, height as usize);
    let (chroma_w, chroma_h) = (w.div_ceil(2), h.div_ceil(2));
    let mut buffer = PageBuffer::new(w * h + 2 * chroma_w * chroma_h)
        .ok_or_else(|| ImageError::OverBudget("could not map memory for the WebP planes".into()))?;
    let (luma, chroma) = buffer.as_mut_slice().split_at_mut(w * h);
    let (blue_difference, red_difference) = chroma.split_at_mut(chroma_w * chroma_h);
    let mut config = decoder_config()?;
    // What libwebp itself does when asked to scale by this much: the
    // in-loop filter smooths block edges the shrink averages away anyway.
    config.options.bypass_filtering = 1;
    config.output.colorspace = WEBP_CSP_MODE::MODE_YUV;
    config.output.is_external_memory = 1;
    // SAFETY: writing the YUVA variant of the output union, which
    // MODE_YUV tells libwebp to use.
    let planes = unsafe { &mut config.output.u.YUVA };
    planes.y = luma.as_mut_ptr();
    planes.y_stride = w as i32;
    planes.y_size = luma.len();
    planes.u = blue_difference.as_mut_ptr();
    planes.v = red_difference.as_mut_ptr();
    planes.u_stride = chroma_w as i32;
    planes.v_stride = chroma_w as i32;
    planes.u_size = blue_difference.len();
    planes.v_size = red_difference.len();
    // SAFETY: the three planes are ours, alive and sized as declared (libwebp
    // checks sizes and strides against the image before writing); with
    // external memory it allocates no output of its own.
    let status = unsafe { libwebp_sys::WebPDecode(bytes.as_ptr(), bytes.len(), &mut config) };
    check(status)?;
    if config.output.width != width as i32 || config.output.height != height as i32 {
        return Err(ImageError::Decode(
            "libwebp returned an unexpected size".into(),
        ));
    }
    let (fx, fy) = (fx as usize, fy as usize);
    let y = plane_means(luma, w, h, fx, fy);
    let u = plane_means(blue_difference, chroma_w, chroma_h, fx / 2, fy / 2);
    let v = plane_means(red_difference, chroma_w, chroma_h, fx / 2, fy / 2);
    let pixels = y
        .iter()
        .zip(&u)
        .zip(&v)
        .flat_map(|((&y, &u), &v)| yuv_to_rgb(y, u, v))
        .collect();
    Ok(Decoded {
        image: Rgb {
            width: w.div_ceil(fx) as u32,
            height: h.div_ceil(fy) as u32,
            pixels,
        },
        path: DecodePath::WebpYuvPlanes {
            shrink_x: fx as u32,
            shrink_y: fy as u32,
        },
    })
}

/// The mean of each `fx`×`fy` block of a plane (edge blocks: of what they
/// have). Rows are added column-wise first, which the compiler vectorises.
fn plane_means(plane: &[u8], width: usize, height: usize, fx: usize, fy: usize) -> Vec<f32> {
    let mut means = Vec::with_capacity(width.div_ceil(fx) * height.div_ceil(fy));
    let mut column_sums = vec![0u32; width];
    for band in plane.chunks(width * fy) {
        column_sums.fill(0);
        for row in band.chunks_exact(width) {
            for (sum, &sample) in column_sums.iter_mut().zip(row) {
                *sum += u32::from(sample);
            }
        }
        let rows = band.len() / width;
        means.extend(
            column_sums
                .chunks(fx)
                .map(|block| block.iter().sum::<u32>() as f32 / (block.len() * rows) as f32),
        );
    }
    means
}

/// WebP's colour space: BT.601 YCbCr, limited range (libwebp's own
/// conversion uses these coefficients in 14-bit fixed point).
fn yuv_to_rgb(y: f32, u: f32, v: f32) -> [u8; 3] {
    let luma = 1.164_38 * (y - 16.0);
    let (cb, cr) = (u - 128.0, v - 128.0);
    let channel = |value: f32| (value.clamp(0.0, 255.0) + 0.5) as u8;
    [
        channel(luma + 1.596_03 * cr),
        channel(luma - 0.391_78 * cb - 0.812_99 * cr),
        channel(luma + 2.017_21 * cb),
    ]
}

/// Decode a still WebP to `width`×`height` (at most its stored size) with
/// libwebp's rescaler, alpha composited over white.
pub(crate) fn decode_scaled(
    bytes: &[u8],
    width: u32,
    height: u32,
    has_alpha: bool,
) -> Result<Decoded, ImageError> {
    let channels: usize = if has_alpha { 4 } else { 3 };
    let stride = width as usize * channels;
    let mut pixels = vec![0u8; stride * height as usize];

    let mut config = decoder_config()?;
    config.options.use_scaling = 1;
    config.options.scaled_width = width as i32;
    config.options.scaled_height = height as i32;
    config.output.colorspace = if has_alpha {
        WEBP_CSP_MODE::MODE_RGBA
    } else {
        WEBP_CSP_MODE::MODE_RGB
    };
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
        return Err(ImageError::Decode(
            "libwebp returned an unexpected size".into(),
        ));
    }
    let pixels = if has_alpha {
        pixels.chunks_exact(4).flat_map(over_white).collect()
    } else {
        pixels
    };
    Ok(Decoded {
        image: Rgb {
            width,
            height,
            pixels,
        },
        path: DecodePath::WebpScaled {
            width: config.output.width as u32,
            height: config.output.height as u32,
            alpha: matches!(config.output.colorspace, WEBP_CSP_MODE::MODE_RGBA),
        },
    })
}

fn check(status: VP8StatusCode) -> Result<(), ImageError> {
    match status {
        VP8StatusCode::VP8_STATUS_OK => Ok(()),
        VP8StatusCode::VP8_STATUS_UNSUPPORTED_FEATURE => Err(ImageError::UnsupportedFormat(
            "this WebP uses a feature zipfleet cannot read".into(),
        )),
        VP8StatusCode::VP8_STATUS_NOT_ENOUGH_DATA => {
            Err(ImageError::Decode("the WebP file ends early".into()))
        }
        VP8StatusCode::VP8_STATUS_OUT_OF_MEMORY => Err(ImageError::OverBudget(
            "ran out of memory decoding the WebP".into(),
        )),
        other => Err(ImageError::Decode(format!(
            "the WebP data is damaged ({other:?})"
        ))),
    }
}

/// Zeroed memory mapped straight from the kernel, in 2 MiB pages where the
/// kernel allows: a 12 MP image's planes are 18 MiB, which in 4 KiB pages
/// cost ~4,600 page faults per image (measured: 13% of the decode time).
struct PageBuffer {
    address: *mut u8,
    len: usize,
}

impl PageBuffer {
    fn new(len: usize) -> Option<Self> {
        let len = len.max(1);
        // SAFETY: an anonymous private mapping of `len` bytes, unmapped in Drop.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: advice only; failure (no transparent huge pages) is harmless.
        unsafe { libc::madvise(address, len, libc::MADV_HUGEPAGE) };
        Some(Self {
            address: address.cast(),
            len,
        })
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` readable, writable, zeroed bytes, owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.address, self.len) }
    }
}

impl Drop for PageBuffer {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`.
        unsafe { libc::munmap(self.address.cast(), self.len) };
    }
}

/// A lossy WebP of `rgb` (tests make their fixtures with it).
#[cfg(test)]
pub(crate) fn encode_lossy(rgb: &[u8], width: u32, height: u32, quality: f32) -> Vec<u8> {
    let mut output: *mut u8 = std::ptr::null_mut();
    // SAFETY: `rgb` holds width × height RGB pixels at stride width × 3;
    // libwebp allocates the output, which is copied and freed with WebPFree.
    unsafe {
        let len = libwebp_sys::WebPEncodeRGB(
            rgb.as_ptr(),
            width as i32,
            height as i32,
            width as i32 * 3,
            quality,
            &mut output,
        );
        assert!(len > 0, "libwebp could not encode");
        let bytes = std::slice::from_raw_parts(output, len).to_vec();
        libwebp_sys::WebPFree(output.cast());
        bytes
    }
}
