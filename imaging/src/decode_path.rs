//! Which decoder runs and with which numbers: the part of the plan a decoder
//! executes, and also what each decoder reports back that it did (so a test
//! can hold the two side by side).

/// One decoder and its parameters, all decided by the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodePath {
    /// libjpeg-turbo at `1/scale` of the stored size (1, 2, 4 or 8).
    /// `multi_scan`: read scan by scan and stopped as soon as the scaled
    /// inverse DCT's coefficients are final. The probe plans it for a
    /// progressive frame; libjpeg decides it from the bitstream, so a rare
    /// sequential file with one scan per component would be multi-scan
    /// without the plan knowing (nor counting its coefficient buffer).
    Jpeg { scale: u32, multi_scan: bool },
    /// libwebp to full-size YUV 4:2:0 planes, box-shrunk here by even
    /// factors (opaque lossy WebP shrunk by at least 2 on each axis).
    WebpYuvPlanes { shrink_x: u32, shrink_y: u32 },
    /// libwebp's scaled decode straight to `width`×`height` (RGBA when the
    /// file has alpha, composited over white afterwards).
    WebpScaled {
        width: u32,
        height: u32,
        alpha: bool,
    },
    /// PNG rows streamed into a box shrink; an interlaced file is decoded
    /// whole first.
    PngRows {
        shrink_x: u32,
        shrink_y: u32,
        interlaced: bool,
    },
    /// The `image` crate decodes the whole (first) frame: GIF, BMP, animated WebP.
    Whole,
}

/// A decoder's result: the pixels, and the path and numbers it actually
/// used, read back from the codec where the codec reports them.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub image: crate::pixels::Rgb,
    /// Read by the tests, which hold it against the plan.
    #[cfg_attr(not(test), allow(dead_code))]
    pub path: DecodePath,
}
