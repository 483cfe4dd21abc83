//! The plan is what the decoder did. For every decode path, the decoder's
//! own account of what it ran (read back from libjpeg and libwebp where they
//! report it) equals the plan's path and numbers, and the image it produced
//! has exactly the size the plan's fit and memory estimate were computed
//! from. A plan that predicted one thing while the decoder did another
//! would fail here, not in the memory budget. (Checked by breaking each side
//! once: a decoded size rounded down instead of up in the plan fails the PNG
//! test; libjpeg's scale clamped to 1/4 in the decoder fails both JPEG tests.)

use crate::decode::run_decoder;
use crate::tests::{detailed, jpeg_bytes, png_bytes, progressive_jpeg};
use crate::{probe, render, DecodePath, Fit, Output, OutputFormat, Probe};
use image::{Rgb as Px, RgbImage, Rgba, RgbaImage};
use std::io::Cursor;

fn fill(width: u32, height: u32) -> Output {
    Output {
        width,
        height,
        fit: Fit::Fill,
        format: OutputFormat::Png,
        quality: 90,
    }
}

/// Probe `bytes`, check the plan chose `expected`, run the planned decoder
/// and hold what it did against the plan; then render by the plan.
fn decodes_as_planned(bytes: &[u8], output: &Output, expected: DecodePath) -> Probe {
    let plan = probe(Cursor::new(bytes), output, u64::MAX).unwrap();
    assert_eq!(plan.decode_path, expected, "the plan's decoder");
    let decoded = run_decoder(bytes, &plan).unwrap();
    assert_eq!(
        decoded.path, plan.decode_path,
        "the decoder ran something other than the plan"
    );
    assert_eq!(
        (decoded.image.width, decoded.image.height),
        (plan.decoded_width, plan.decoded_height),
        "{expected:?}: the decoded size is not the one the fit and the estimate were made for"
    );
    assert_eq!(
        decoded.image.pixels.len(),
        plan.decoded_width as usize * plan.decoded_height as usize * 3
    );
    assert!(
        decoded.image.pixels.len() as u64 <= plan.working_bytes,
        "{expected:?}: the estimate ({} bytes) is below the decoded image alone",
        plan.working_bytes
    );
    let rendered = render(bytes, &plan).unwrap();
    let out = image::load_from_memory(&rendered.bytes).unwrap();
    assert_eq!((out.width(), out.height()), (output.width, output.height));
    plan
}

fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Px([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    })
}

#[test]
fn jpegs_decode_at_the_planned_dct_scale() {
    // Odd sizes, so the scaled sizes round up at the edges.
    for ((width, height), scale) in [
        ((901, 899), 8),
        ((501, 499), 4),
        ((301, 299), 2),
        ((151, 149), 1),
    ] {
        let bytes = jpeg_bytes(&gradient(width, height));
        let plan = decodes_as_planned(
            &bytes,
            &fill(100, 100),
            DecodePath::Jpeg {
                scale,
                multi_scan: false,
            },
        );
        assert_eq!(
            (plan.decoded_width, plan.decoded_height),
            (width.div_ceil(scale), height.div_ceil(scale))
        );
    }
}

#[test]
fn progressive_jpegs_decode_scan_by_scan_at_the_planned_scale() {
    let image = detailed(960, 720);
    for sampling in [(1, 1), (2, 2)] {
        let bytes = progressive_jpeg(&image, sampling);
        for (output, scale) in [(fill(100, 80), 8), (fill(300, 300), 2)] {
            decodes_as_planned(
                &bytes,
                &output,
                DecodePath::Jpeg {
                    scale,
                    multi_scan: true,
                },
            );
        }
    }
}

#[test]
fn opaque_lossy_webps_shrink_from_their_yuv_planes_by_the_planned_even_factors() {
    let bytes = crate::webp::encode_lossy(gradient(900, 700).as_raw(), 900, 700, 85.0);
    // Shrink-on-load factors 4×3; the chroma grid rounds 3 down to 2.
    let plan = decodes_as_planned(
        &bytes,
        &fill(100, 100),
        DecodePath::WebpYuvPlanes {
            shrink_x: 4,
            shrink_y: 2,
        },
    );
    assert_eq!((plan.decoded_width, plan.decoded_height), (225, 350));
}

#[test]
fn webps_the_planes_cannot_serve_take_libwebps_scaled_decode_at_the_planned_size() {
    // Opaque lossy, but the vertical factor is 1: no even shrink there.
    let lossy = crate::webp::encode_lossy(gradient(500, 300).as_raw(), 500, 300, 85.0);
    decodes_as_planned(
        &lossy,
        &fill(100, 100),
        DecodePath::WebpScaled {
            width: 250,
            height: 300,
            alpha: false,
        },
    );
    // Lossless with alpha (the `image` crate writes VP8L).
    let translucent = RgbaImage::from_fn(400, 400, |x, y| {
        Rgba([
            (x % 256) as u8,
            (y % 256) as u8,
            40,
            if x < 200 { 255 } else { 90 },
        ])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgba8(translucent)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::WebP)
        .unwrap();
    decodes_as_planned(
        &bytes,
        &fill(100, 100),
        DecodePath::WebpScaled {
            width: 200,
            height: 200,
            alpha: true,
        },
    );
}

#[test]
fn pngs_stream_rows_into_the_planned_box_shrink() {
    let big = RgbaImage::from_fn(1801, 1199, |x, y| {
        Rgba([
            (x % 256) as u8,
            (y % 256) as u8,
            0,
            if y < 900 { 255 } else { 0 },
        ])
    });
    let plan = decodes_as_planned(
        &png_bytes(&big.into()),
        &fill(120, 80),
        DecodePath::PngRows {
            shrink_x: 7,
            shrink_y: 7,
            interlaced: false,
        },
    );
    assert_eq!((plan.decoded_width, plan.decoded_height), (258, 172));
    // No shrink: the rows pass straight through.
    decodes_as_planned(
        &png_bytes(&gradient(150, 100).into()),
        &fill(120, 80),
        DecodePath::PngRows {
            shrink_x: 1,
            shrink_y: 1,
            interlaced: false,
        },
    );
}

#[test]
fn gifs_and_bmps_decode_whole() {
    let source: image::DynamicImage = gradient(300, 200).into();
    for format in [image::ImageFormat::Gif, image::ImageFormat::Bmp] {
        let mut bytes = Vec::new();
        source
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        let plan = decodes_as_planned(&bytes, &fill(64, 48), DecodePath::Whole);
        assert_eq!((plan.decoded_width, plan.decoded_height), (300, 200));
    }
}

/// An animated WebP of one lossy frame (VP8X, ANIM, ANMF around `still`'s
/// VP8 chunk), as a browser would save a short animation.
fn animated_webp(still: &[u8], width: u32, height: u32) -> Vec<u8> {
    let vp8_chunk = &still[12..];
    let u24 = |value: u32| value.to_le_bytes()[..3].to_vec();
    let chunk = |fourcc: &[u8], payload: &[u8]| {
        let mut out = fourcc.to_vec();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        if payload.len() % 2 == 1 {
            out.push(0);
        }
        out
    };
    let mut vp8x = vec![0x02, 0, 0, 0];
    vp8x.extend(u24(width - 1));
    vp8x.extend(u24(height - 1));
    let anim = [255, 255, 255, 255, 0, 0];
    let mut anmf = [u24(0), u24(0), u24(width - 1), u24(height - 1), u24(100)].concat();
    anmf.push(0);
    anmf.extend_from_slice(vp8_chunk);
    let body = [
        b"WEBP".to_vec(),
        chunk(b"VP8X", &vp8x),
        chunk(b"ANIM", &anim),
        chunk(b"ANMF", &anmf),
    ]
    .concat();
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

#[test]
fn animated_webps_decode_their_first_frame_whole() {
    let still = crate::webp::encode_lossy(gradient(320, 240).as_raw(), 320, 240, 85.0);
    let bytes = animated_webp(&still, 320, 240);
    let plan = decodes_as_planned(&bytes, &fill(64, 48), DecodePath::Whole);
    assert_eq!((plan.decoded_width, plan.decoded_height), (320, 240));
}
