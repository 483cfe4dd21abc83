//! Unit tests of the pipeline on images made in memory.

use crate::format::sniff;
use crate::plan::jpeg_scale;
use crate::*;
use image::metadata::Orientation;
use image::{ImageEncoder, Rgb as Px, RgbImage, Rgba, RgbaImage};
use std::io::Cursor;

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];

fn output(width: u32, height: u32, fit: Fit, format: OutputFormat) -> Output {
    Output {
        width,
        height,
        fit,
        format,
        quality: 95,
    }
}

pub(crate) fn png_bytes(image: &image::DynamicImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    bytes
}

pub(crate) fn jpeg_bytes(image: &RgbImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    bytes
}

/// Insert an EXIF APP1 segment (orientation, plus a fake GPS tag) after SOI.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0x8825u16.to_le_bytes()); // GPS IFD pointer
    tiff.extend_from_slice(&4u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((segment.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&segment);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The output size jobs get when they name none (the spec's default).
fn default_output() -> Output {
    output(224, 224, Fit::Fill, OutputFormat::Jpeg)
}

fn run(bytes: &[u8], out: &Output) -> Result<(Rendered, RgbImage), ImageError> {
    let probe = probe(Cursor::new(bytes), out, 100_000_000)?;
    let rendered = render(bytes, &probe)?;
    let decoded = image::load_from_memory(&rendered.bytes)
        .unwrap()
        .into_rgb8();
    Ok((rendered, decoded))
}

fn close(actual: &Px<u8>, expected: [u8; 3], tolerance: i32) -> bool {
    actual
        .0
        .iter()
        .zip(expected)
        .all(|(a, e)| (i32::from(*a) - i32::from(e)).abs() <= tolerance)
}

/// 400×100: red quarter, green half, blue quarter.
fn three_bands() -> RgbImage {
    RgbImage::from_fn(400, 100, |x, _| {
        Px(if x < 100 {
            RED
        } else if x < 300 {
            GREEN
        } else {
            BLUE
        })
    })
}

#[test]
fn fill_stretches_to_exact_size() {
    let bytes = png_bytes(&three_bands().into());
    let (rendered, out) = run(&bytes, &output(224, 224, Fit::Fill, OutputFormat::Png)).unwrap();
    assert_eq!(out.dimensions(), (224, 224));
    assert!(close(out.get_pixel(5, 112), RED, 2));
    assert!(close(out.get_pixel(112, 5), GREEN, 2));
    assert!(close(out.get_pixel(218, 218), BLUE, 2));
    assert_eq!((rendered.source_width, rendered.source_height), (400, 100));
}

#[test]
fn cover_crops_the_centre() {
    let bytes = png_bytes(&three_bands().into());
    let (_, out) = run(&bytes, &output(100, 100, Fit::Cover, OutputFormat::Png)).unwrap();
    assert_eq!(out.dimensions(), (100, 100));
    for (x, y) in [(0, 0), (99, 0), (0, 99), (99, 99), (50, 50)] {
        assert!(
            close(out.get_pixel(x, y), GREEN, 3),
            "({x},{y}) = {:?}",
            out.get_pixel(x, y)
        );
    }
}

#[test]
fn contain_pads_and_keeps_everything() {
    let bytes = png_bytes(&three_bands().into());
    let (_, out) = run(&bytes, &output(100, 100, Fit::Contain, OutputFormat::Png)).unwrap();
    assert_eq!(out.dimensions(), (100, 100));
    // 400×100 scaled into 100×100 is 100×25, centred: rows 37..62.
    assert!(
        close(out.get_pixel(50, 10), [0, 0, 0], 0),
        "padding is black"
    );
    assert!(close(out.get_pixel(50, 90), [0, 0, 0], 0));
    assert!(close(out.get_pixel(2, 50), RED, 10));
    assert!(close(out.get_pixel(50, 50), GREEN, 10));
    assert!(close(out.get_pixel(97, 50), BLUE, 10));
}

#[test]
fn exif_orientation_makes_the_photo_upright() {
    // Stored 200×100, red left half, blue right half; orientation 6 means
    // "rotate 90° clockwise to display", so upright it is 100×200, red on top.
    let stored = RgbImage::from_fn(200, 100, |x, _| Px(if x < 100 { RED } else { BLUE }));
    let bytes = with_exif_orientation(&jpeg_bytes(&stored), 6);
    let probe = probe(Cursor::new(&bytes), &default_output(), u64::MAX).unwrap();
    assert_eq!(probe.orientation, Orientation::Rotate90);
    let (rendered, out) = run(&bytes, &output(50, 100, Fit::Fill, OutputFormat::Png)).unwrap();
    assert_eq!((rendered.source_width, rendered.source_height), (100, 200));
    assert_eq!(out.dimensions(), (50, 100));
    assert!(
        close(out.get_pixel(25, 10), RED, 40),
        "top is {:?}",
        out.get_pixel(25, 10)
    );
    assert!(
        close(out.get_pixel(25, 90), BLUE, 40),
        "bottom is {:?}",
        out.get_pixel(25, 90)
    );
}

#[test]
fn output_carries_no_metadata() {
    let stored = RgbImage::from_pixel(64, 64, Px(GREEN));
    let bytes = with_exif_orientation(&jpeg_bytes(&stored), 1);
    assert!(bytes.windows(4).any(|w| w == b"Exif"));
    let (rendered, _) = run(&bytes, &output(32, 32, Fit::Fill, OutputFormat::Jpeg)).unwrap();
    assert!(
        !rendered.bytes.windows(4).any(|w| w == b"Exif"),
        "EXIF must be stripped"
    );
    assert!(!rendered.bytes.windows(4).any(|w| w == b"GPS\0"));
}

#[test]
fn transparency_becomes_white() {
    let image = RgbaImage::from_fn(64, 64, |x, _| {
        if x < 32 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([0, 0, 0, 128])
        }
    });
    let (_, out) = run(
        &png_bytes(&image.into()),
        &output(64, 64, Fit::Fill, OutputFormat::Png),
    )
    .unwrap();
    assert!(
        close(out.get_pixel(5, 5), [255, 255, 255], 0),
        "fully transparent is white"
    );
    assert!(
        close(out.get_pixel(60, 5), [127, 127, 127], 1),
        "half-transparent black is grey: {:?}",
        out.get_pixel(60, 5)
    );
}

#[test]
fn sixteen_bit_and_grey_inputs_become_rgb() {
    let sixteen =
        image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(40, 40, image::Rgb([65535, 32768, 0]));
    let (_, out) = run(
        &png_bytes(&image::DynamicImage::ImageRgb16(sixteen)),
        &output(20, 20, Fit::Fill, OutputFormat::Png),
    )
    .unwrap();
    assert!(
        close(out.get_pixel(10, 10), [255, 128, 0], 1),
        "{:?}",
        out.get_pixel(10, 10)
    );

    let grey = image::GrayImage::from_pixel(40, 40, image::Luma([77]));
    let (_, out) = run(
        &png_bytes(&grey.clone().into()),
        &output(20, 20, Fit::Fill, OutputFormat::Png),
    )
    .unwrap();
    assert!(close(out.get_pixel(3, 3), [77, 77, 77], 0));

    let mut grey_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut grey_jpeg, 100)
        .write_image(grey.as_raw(), 40, 40, image::ExtendedColorType::L8)
        .unwrap();
    let (_, out) = run(&grey_jpeg, &output(20, 20, Fit::Fill, OutputFormat::Png)).unwrap();
    assert!(close(out.get_pixel(3, 3), [77, 77, 77], 2));
}

#[test]
fn gif_webp_and_bmp_decode() {
    let source: image::DynamicImage = RgbImage::from_pixel(30, 20, Px(BLUE)).into();
    for format in [
        image::ImageFormat::Gif,
        image::ImageFormat::WebP,
        image::ImageFormat::Bmp,
    ] {
        let mut bytes = Vec::new();
        let encodable = if format == image::ImageFormat::WebP {
            image::DynamicImage::ImageRgba8(source.to_rgba8())
        } else {
            source.clone()
        };
        encodable
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        let (_, out) = run(&bytes, &output(10, 10, Fit::Fill, OutputFormat::Jpeg))
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(out.dimensions(), (10, 10));
        assert!(
            close(out.get_pixel(5, 5), BLUE, 12),
            "{format:?}: {:?}",
            out.get_pixel(5, 5)
        );
    }
}

#[test]
fn large_jpegs_shrink_on_load_but_never_below_the_target() {
    let fill = output(224, 224, Fit::Fill, OutputFormat::Jpeg);
    assert_eq!(jpeg_scale(4000, 3000, &fill, Orientation::NoTransforms), 8);
    assert_eq!(jpeg_scale(1000, 1000, &fill, Orientation::NoTransforms), 4);
    assert_eq!(jpeg_scale(300, 300, &fill, Orientation::NoTransforms), 1);
    // A panorama still needs its full height for a square fill.
    assert_eq!(jpeg_scale(8000, 500, &fill, Orientation::NoTransforms), 2);
    // Cover of a panorama needs the height: 500 / 2 = 250 ≥ 224.
    assert_eq!(
        jpeg_scale(
            8000,
            500,
            &output(224, 224, Fit::Cover, OutputFormat::Jpeg),
            Orientation::NoTransforms
        ),
        2
    );

    let big = RgbImage::from_fn(2000, 1600, |x, y| {
        Px([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let (_, out) = run(&jpeg_bytes(&big), &fill).unwrap();
    assert_eq!(out.dimensions(), (224, 224));
}

#[test]
fn non_images_are_unsupported() {
    for (bytes, hint) in [
        (
            &b"<!DOCTYPE html><html><body>Please log in</body></html>"[..],
            "web page",
        ),
        (
            b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"></svg>",
            "SVG",
        ),
        (b"%PDF-1.7\n...", "PDF"),
        (b"\0\0\0\x18ftypheic\0\0\0\0", "HEIC"),
        (b"", "empty"),
    ] {
        let err = sniff(bytes).unwrap_err();
        assert!(matches!(err, ImageError::UnsupportedFormat(_)), "{err:?}");
        assert!(err.to_string().contains(hint), "{err}");
    }
}

#[test]
fn damaged_images_fail_to_decode_without_panicking() {
    let big = RgbImage::from_fn(300, 200, |x, y| Px([(x % 256) as u8, (y % 256) as u8, 0]));
    let jpeg = jpeg_bytes(&big);
    let truncated = &jpeg[..jpeg.len() / 3];
    let out = output(64, 64, Fit::Fill, OutputFormat::Jpeg);
    let result = probe(Cursor::new(truncated), &out, u64::MAX).and_then(|p| render(truncated, &p));
    assert!(matches!(result.unwrap_err(), ImageError::Decode(_)));

    let png = png_bytes(&big.into());
    let truncated = &png[..png.len() / 2];
    let result = probe(Cursor::new(truncated), &out, u64::MAX).and_then(|p| render(truncated, &p));
    assert!(matches!(result.unwrap_err(), ImageError::Decode(_)));

    let header_only = &png[..20];
    assert!(matches!(
        probe(Cursor::new(header_only), &out, u64::MAX).unwrap_err(),
        ImageError::Decode(_)
    ));
}

#[test]
fn too_many_pixels_is_refused_from_the_header() {
    let image = RgbImage::from_pixel(100, 100, Px(RED));
    let err = probe(
        Cursor::new(png_bytes(&image.into())),
        &default_output(),
        9_999,
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::TooManyPixels { .. }), "{err:?}");
}

#[test]
fn fit_plans() {
    let out = output(224, 224, Fit::Contain, OutputFormat::Jpeg);
    let plan = plan_fit(400, 100, &out, Orientation::NoTransforms);
    assert_eq!(
        (
            plan.resize_width,
            plan.resize_height,
            plan.offset_x,
            plan.offset_y
        ),
        (224, 56, 0, 84)
    );
    let rotated = plan_fit(400, 100, &out, Orientation::Rotate90);
    assert_eq!(
        (
            rotated.resize_width,
            rotated.resize_height,
            rotated.offset_x,
            rotated.offset_y
        ),
        (224, 56, 84, 0)
    );
    let cover = plan_fit(
        400,
        100,
        &output(100, 100, Fit::Cover, OutputFormat::Jpeg),
        Orientation::NoTransforms,
    );
    assert_eq!(cover.crop, Some((150.0, 0.0, 100.0, 100.0)));
}

#[test]
fn streaming_box_shrink_averages_every_block_including_the_edges() {
    // 7×5 source, 3×2 blocks: edge blocks are 1 column wide and 1 row high.
    let source = RgbImage::from_fn(7, 5, |x, y| {
        Px([(x * 30) as u8, (y * 50) as u8, (x * y) as u8])
    });
    let mut shrinker = shrink::BoxShrinker::new(7, 5, 3, 2);
    for row in source.as_raw().chunks_exact(7 * 3) {
        shrinker.push_row(row);
    }
    let shrunk = shrinker.finish();
    assert_eq!((shrunk.width, shrunk.height), (3, 3));
    for (dy, dx) in (0..3u32).flat_map(|dy| (0..3u32).map(move |dx| (dy, dx))) {
        let xs = (dx * 3)..((dx + 1) * 3).min(7);
        let ys = (dy * 2)..((dy + 1) * 2).min(5);
        let count = (xs.len() * ys.len()) as u32;
        for channel in 0..3 {
            let sum: u32 = ys
                .clone()
                .flat_map(|y| xs.clone().map(move |x| (x, y)))
                .map(|(x, y)| u32::from(source.get_pixel(x, y)[channel]))
                .sum();
            let expected = ((sum + count / 2) / count) as u8;
            let actual = shrunk.pixels[((dy * 3 + dx) * 3) as usize + channel];
            assert_eq!(actual, expected, "block ({dx}, {dy}) channel {channel}");
        }
    }
}

#[test]
fn large_pngs_stream_through_the_shrink_and_keep_their_picture() {
    // Left half red, right half blue, with a transparent bottom band: the
    // streamed shrink must keep where things are and composite over white.
    let big = RgbaImage::from_fn(1800, 1200, |x, y| {
        if y >= 900 {
            Rgba([0, 0, 0, 0])
        } else if x < 900 {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 255, 255])
        }
    });
    let (_, out) = run(
        &png_bytes(&big.into()),
        &output(120, 80, Fit::Fill, OutputFormat::Png),
    )
    .unwrap();
    assert_eq!(out.dimensions(), (120, 80));
    assert!(
        close(out.get_pixel(20, 20), RED, 2),
        "{:?}",
        out.get_pixel(20, 20)
    );
    assert!(
        close(out.get_pixel(100, 20), BLUE, 2),
        "{:?}",
        out.get_pixel(100, 20)
    );
    assert!(
        close(out.get_pixel(60, 75), [255, 255, 255], 2),
        "{:?}",
        out.get_pixel(60, 75)
    );
}

#[test]
fn a_png_costs_one_row_not_the_whole_image() {
    let big = RgbImage::from_pixel(4000, 3000, Px(GREEN));
    let probed = probe(
        Cursor::new(png_bytes(&big.into())),
        &default_output(),
        u64::MAX,
    )
    .unwrap();
    assert!(
        probed.working_bytes < 4 * 1024 * 1024,
        "{} bytes for a 12 MP PNG",
        probed.working_bytes
    );
}

#[test]
fn damaged_webp_fails_to_decode_without_panicking() {
    let webp = include_bytes!("../../examples/images/circle-3.webp");
    let out = output(64, 64, Fit::Fill, OutputFormat::Jpeg);
    let whole = probe(Cursor::new(&webp[..]), &out, u64::MAX).and_then(|p| render(webp, &p));
    assert!(whole.is_ok(), "{whole:?}");
    let truncated = &webp[..webp.len() * 2 / 3];
    let result = probe(Cursor::new(truncated), &out, u64::MAX).and_then(|p| render(truncated, &p));
    assert!(matches!(result.unwrap_err(), ImageError::Decode(_)));
    let mut scrambled = webp.to_vec();
    let middle = scrambled.len() / 2;
    scrambled[40..middle]
        .iter_mut()
        .for_each(|b| *b = b.wrapping_mul(7).wrapping_add(13));
    let result =
        probe(Cursor::new(&scrambled[..]), &out, u64::MAX).and_then(|p| render(&scrambled, &p));
    // Reaching this line means no panic; what comes back is a clean error or a whole image.
    match result {
        Ok(rendered) => assert_eq!(
            image::load_from_memory(&rendered.bytes).unwrap().width(),
            64
        ),
        Err(err) => assert!(
            matches!(
                err,
                ImageError::Decode(_) | ImageError::UnsupportedFormat(_)
            ),
            "{err}"
        ),
    }
}

/// A detailed picture (gradients plus a fine checker) so that the AC
/// coefficients carry real information.
pub(crate) fn detailed(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let checker = if (x / 3 + y / 2) % 2 == 0 { 40 } else { 0 };
        Px([
            (x * 255 / width) as u8 / 2 + checker,
            (y * 255 / height) as u8 / 2 + checker,
            ((x ^ y) & 0x7F) as u8,
        ])
    })
}

/// A progressive JPEG with libjpeg's standard scan script (DC first, then
/// AC in spectral bands and bit planes), chroma subsampled by `sampling`.
pub(crate) fn progressive_jpeg(image: &RgbImage, sampling: (u8, u8)) -> Vec<u8> {
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_fastest_defaults();
    compress.set_size(image.width() as usize, image.height() as usize);
    compress.set_quality(90.0);
    compress.set_chroma_sampling_pixel_sizes(sampling, sampling);
    compress.set_progressive_mode();
    let mut started = compress.start_compress(Vec::new()).unwrap();
    started.write_scanlines(image.as_raw()).unwrap();
    started.finish().unwrap()
}

#[test]
fn progressive_jpegs_stopped_early_decode_to_exactly_the_full_pixels() {
    let image = detailed(960, 720);
    for sampling in [(1, 1), (2, 1), (2, 2)] {
        let bytes = progressive_jpeg(&image, sampling);
        for scale in [1, 2, 4, 8] {
            let early =
                jpeg::decode_reading(&bytes, scale, u64::MAX, jpeg::Scans::UntilPixelsFinal)
                    .unwrap()
                    .image;
            let full = jpeg::decode_reading(&bytes, scale, u64::MAX, jpeg::Scans::All)
                .unwrap()
                .image;
            assert_eq!(
                (early.width, early.height),
                (960 / scale, 720 / scale),
                "sampling {sampling:?} scale 1/{scale}"
            );
            assert!(
                early.pixels == full.pixels,
                "sampling {sampling:?} scale 1/{scale}: early stop changed pixels"
            );
        }
    }
}

#[test]
fn at_one_eighth_a_progressive_jpeg_is_read_only_until_its_dc_is_final() {
    let image = detailed(960, 720);
    let bytes = progressive_jpeg(&image, (1, 1));
    // Cut the file inside its last scan (the luma AC bottom bit): the
    // detail is lost, the DC coefficients are all there.
    let last_scan = bytes
        .windows(2)
        .rposition(|marker| marker == [0xFF, 0xDA])
        .unwrap();
    let cut = &bytes[..last_scan + 200];
    let intact = jpeg::decode_reading(&bytes, 8, u64::MAX, jpeg::Scans::All)
        .unwrap()
        .image;
    let early = jpeg::decode_reading(cut, 8, u64::MAX, jpeg::Scans::UntilPixelsFinal)
        .unwrap()
        .image;
    assert!(
        early.pixels == intact.pixels,
        "stopping at the final DC must give the full decode's pixels"
    );
    // Proof that the cut is real damage: reading every scan reports it,
    // and so does a scale whose inverse DCT needs the AC coefficients.
    assert!(matches!(
        jpeg::decode_reading(cut, 8, u64::MAX, jpeg::Scans::All),
        Err(ImageError::Decode(_))
    ));
    assert!(matches!(
        jpeg::decode_reading(cut, 4, u64::MAX, jpeg::Scans::UntilPixelsFinal),
        Err(ImageError::Decode(_))
    ));
}

#[test]
fn rgba_rows_shrink_as_if_composited_over_white_first() {
    let source = RgbaImage::from_fn(11, 7, |x, y| {
        Rgba([
            (x * 23) as u8,
            (y * 37) as u8,
            (x * y * 5) as u8,
            [255, 0, 128, 200][((x + y) % 4) as usize],
        ])
    });
    let mut direct = shrink::BoxShrinker::new(11, 7, 3, 2);
    let mut composited = shrink::BoxShrinker::new(11, 7, 3, 2);
    for row in source.as_raw().chunks_exact(11 * 4) {
        direct.push_rgba_row(row);
        let rgb: Vec<u8> = row.chunks_exact(4).flat_map(pixels::over_white).collect();
        composited.push_row(&rgb);
    }
    let (direct, composited) = (direct.finish(), composited.finish());
    assert_eq!((direct.width, direct.height), (4, 4));
    assert_eq!(direct, composited);
}

#[test]
fn opaque_lossy_webps_shrunk_from_their_yuv_planes_match_libwebps_rescaler() {
    let smooth = |width: u32, height: u32| {
        RgbImage::from_fn(width, height, |x, y| {
            let wave =
                ((f64::from(x) / 40.0).sin() * 60.0 + (f64::from(y) / 25.0).cos() * 60.0) as i32;
            let channel = |base: u32| (base as i32 + wave).clamp(0, 255) as u8;
            Px([
                channel(x * 200 / width + 20),
                channel(y * 200 / height + 20),
                channel(128),
            ])
        })
    };
    // Sizes that are multiples of the factor, so libwebp's rescaler samples
    // the same 4×4 blocks (at other sizes it samples at fractional
    // positions and differs in phase, not in correctness).
    for (width, height) in [(900, 700), (640, 480)] {
        let webp = webp::encode_lossy(smooth(width, height).as_raw(), width, height, 90.0);
        let features = webp::features(&webp).unwrap().unwrap();
        assert!(features.lossy && !features.has_alpha);
        assert_eq!(
            plan::webp_path(&features, width, height, 4, 4),
            DecodePath::WebpYuvPlanes {
                shrink_x: 4,
                shrink_y: 4
            }
        );
        let planes = webp::decode_yuv_shrunk(&webp, width, height, 4, 4)
            .unwrap()
            .image;
        let rescaled = webp::decode_scaled(&webp, width / 4, height / 4, false)
            .unwrap()
            .image;
        assert_eq!((planes.width, planes.height), (width / 4, height / 4));
        assert_eq!(
            (planes.width, planes.height),
            (rescaled.width, rescaled.height)
        );
        let difference: u64 = planes
            .pixels
            .iter()
            .zip(&rescaled.pixels)
            .map(|(&a, &b)| u64::from(a.abs_diff(b)))
            .sum();
        let mean = difference as f64 / planes.pixels.len() as f64;
        assert!(
            mean < 1.0,
            "{width}×{height}: mean difference {mean:.2} from libwebp's own scaled decode"
        );
    }
    // Odd sizes: partial edge blocks, and a last chroma sample covering one
    // luma column; odd factors are rounded down to even ones (the chroma grid).
    let (width, height) = (901, 701);
    let source = smooth(width, height);
    let webp = webp::encode_lossy(source.as_raw(), width, height, 90.0);
    let features = webp::features(&webp).unwrap().unwrap();
    let path = plan::webp_path(&features, width, height, 5, 3);
    assert_eq!(
        path,
        DecodePath::WebpYuvPlanes {
            shrink_x: 4,
            shrink_y: 2
        }
    );
    let shrunk = webp::decode_yuv_shrunk(&webp, width, height, 4, 2)
        .unwrap()
        .image;
    assert_eq!((shrunk.width, shrunk.height), (226, 351));
    let corner = &shrunk.pixels[shrunk.pixels.len() - 3..];
    let expected = source.get_pixel(900, 700);
    assert!(
        corner
            .iter()
            .zip(expected.0)
            .all(|(&got, want)| got.abs_diff(want) <= 12),
        "corner {corner:?}, source {expected:?}"
    );
}
