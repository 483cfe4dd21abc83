//! The resize, orientation and padding, executing a [`FitPlan`] made by the
//! probe for the decoded image's size.
//!
//! Large reductions are done the way libvips does them: an integer box
//! shrink first (cheap, and it averages every source pixel), then a Lanczos3
//! convolution for the last factor of two or less. The EXIF rotation is
//! applied to the small resized image.

use crate::error::ImageError;
use crate::fit::FitPlan;
use crate::pixels::Rgb;
use crate::shrink::box_shrink;
use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;

/// Resize per the plan, which was made for exactly this image's size: its
/// box pre-shrink, then Lanczos3.
pub(crate) fn resize(source: Rgb, plan: &FitPlan) -> Result<Rgb, ImageError> {
    let (box_x, box_y) = (plan.box_shrink_x, plan.box_shrink_y);
    let source = if box_x > 1 || box_y > 1 {
        box_shrink(&source, box_x, box_y)
    } else {
        source
    };
    let crop = plan.crop.map(|(l, t, w, h)| {
        (
            l / f64::from(box_x),
            t / f64::from(box_y),
            w / f64::from(box_x),
            h / f64::from(box_y),
        )
    });

    if crop.is_none() && source.width == plan.resize_width && source.height == plan.resize_height {
        return Ok(source);
    }
    let (width, height) = (source.width, source.height);
    let src = Image::from_vec_u8(width, height, source.pixels, PixelType::U8x3)
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    let mut dst = Image::new(plan.resize_width, plan.resize_height, PixelType::U8x3);
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    if let Some((left, top, w, h)) = crop {
        options = options.crop(
            left,
            top,
            w.min(f64::from(width) - left),
            h.min(f64::from(height) - top),
        );
    }
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| ImageError::Decode(format!("resize failed: {e}")))?;
    Ok(Rgb {
        width: plan.resize_width,
        height: plan.resize_height,
        pixels: dst.into_vec(),
    })
}

/// Apply the EXIF orientation, making the image upright.
pub(crate) fn orient(image: Rgb, orientation: Orientation) -> Rgb {
    if orientation == Orientation::NoTransforms {
        return image;
    }
    let buffer = image::RgbImage::from_raw(image.width, image.height, image.pixels)
        .expect("buffer matches its size");
    let mut dynamic = image::DynamicImage::ImageRgb8(buffer);
    dynamic.apply_orientation(orientation);
    let upright = dynamic.into_rgb8();
    Rgb {
        width: upright.width(),
        height: upright.height(),
        pixels: upright.into_raw(),
    }
}

/// Place the image on the plan's canvas (black padding), for `contain`.
pub(crate) fn pad(image: Rgb, plan: &FitPlan) -> Rgb {
    if image.width == plan.canvas_width && image.height == plan.canvas_height {
        return image;
    }
    let (cw, ch) = (plan.canvas_width as usize, plan.canvas_height as usize);
    let mut pixels = vec![0u8; cw * ch * 3];
    let row_bytes = image.width as usize * 3;
    for y in 0..(image.height as usize).min(ch) {
        let dst_start = ((y + plan.offset_y as usize) * cw + plan.offset_x as usize) * 3;
        pixels[dst_start..dst_start + row_bytes]
            .copy_from_slice(&image.pixels[y * row_bytes..(y + 1) * row_bytes]);
    }
    Rgb {
        width: plan.canvas_width,
        height: plan.canvas_height,
        pixels,
    }
}
