//! Geometry of the three fits, and the resize itself.
//!
//! All sizes are planned in the image's *stored* orientation, so the EXIF
//! rotation is applied to the small resized image instead of the large
//! decoded one. Large reductions are done the way libvips does them: an
//! integer box shrink first (cheap, and it averages every source pixel), then
//! a Lanczos3 convolution for the last factor of two or less.

use super::decode::over_white;
use super::probe::swaps_axes;
use super::{ImageError, Rgb};
use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use zipfleet_shared::spec::{Fit, OutputSpec};

/// How one decoded image becomes the output.
#[derive(Debug, Clone, PartialEq)]
pub struct FitPlan {
    /// Part of the decoded image to use (left, top, width, height); `cover` crops.
    pub crop: Option<(f64, f64, f64, f64)>,
    /// Size to resize to, in stored orientation.
    pub resize_width: u32,
    pub resize_height: u32,
    /// The final canvas (upright) and where the upright image sits on it.
    pub canvas_width: u32,
    pub canvas_height: u32,
    pub offset_x: u32,
    pub offset_y: u32,
}

/// The output box in stored orientation.
fn stored_target(output: &OutputSpec, orientation: Orientation) -> (u32, u32) {
    if swaps_axes(orientation) {
        (output.height, output.width)
    } else {
        (output.width, output.height)
    }
}

/// Plan the fit of a `width`×`height` decoded image (stored orientation).
pub fn plan_fit(width: u32, height: u32, output: &OutputSpec, orientation: Orientation) -> FitPlan {
    let (tw, th) = stored_target(output, orientation);
    let (w, h) = (f64::from(width), f64::from(height));
    let mut plan = FitPlan {
        crop: None,
        resize_width: tw,
        resize_height: th,
        canvas_width: output.width,
        canvas_height: output.height,
        offset_x: 0,
        offset_y: 0,
    };
    match output.fit {
        Fit::Fill => {}
        Fit::Cover => {
            let target_aspect = f64::from(tw) / f64::from(th);
            let crop = if w / h > target_aspect {
                let cw = h * target_aspect;
                ((w - cw) / 2.0, 0.0, cw, h)
            } else {
                let ch = w / target_aspect;
                (0.0, (h - ch) / 2.0, w, ch)
            };
            plan.crop = Some(crop);
        }
        Fit::Contain => {
            let scale = (f64::from(tw) / w).min(f64::from(th) / h);
            plan.resize_width = ((w * scale).round() as u32).clamp(1, tw);
            plan.resize_height = ((h * scale).round() as u32).clamp(1, th);
            let (upright_w, upright_h) = if swaps_axes(orientation) {
                (plan.resize_height, plan.resize_width)
            } else {
                (plan.resize_width, plan.resize_height)
            };
            plan.offset_x = (output.width - upright_w) / 2;
            plan.offset_y = (output.height - upright_h) / 2;
        }
    }
    plan
}

/// The smallest decoded size (stored orientation) from which the fit only
/// ever shrinks: what shrink-on-load may reduce the source to.
pub(crate) fn needed_source_size(
    width: u32,
    height: u32,
    output: &OutputSpec,
    orientation: Orientation,
) -> (u32, u32) {
    let (tw, th) = stored_target(output, orientation);
    let (w, h) = (f64::from(width), f64::from(height));
    let scale = match output.fit {
        Fit::Fill => return (tw.min(width), th.min(height)),
        Fit::Cover => (f64::from(tw) / w).max(f64::from(th) / h),
        Fit::Contain => (f64::from(tw) / w).min(f64::from(th) / h),
    };
    (
        ((w * scale).ceil() as u32).min(width),
        ((h * scale).ceil() as u32).min(height),
    )
}

/// The integer box shrink [`resize`] would apply first, per axis: what a
/// decoder that scales while decoding (libwebp) may reduce the source by
/// without changing the result's geometry.
pub(crate) fn shrink_on_load_factors(
    width: u32,
    height: u32,
    output: &OutputSpec,
    orientation: Orientation,
) -> (u32, u32) {
    let (need_w, need_h) = needed_source_size(width, height, output, orientation);
    let factor = |side: u32, need: u32| {
        ((f64::from(side) / f64::from(need.max(1))) / 2.0)
            .floor()
            .max(1.0) as u32
    };
    (factor(width, need_w), factor(height, need_h))
}

/// Resize per the plan: box pre-shrink for large factors, then Lanczos3.
pub(super) fn resize(source: Rgb, plan: &FitPlan) -> Result<Rgb, ImageError> {
    let (crop_w, crop_h) = plan
        .crop
        .map_or((f64::from(source.width), f64::from(source.height)), |c| {
            (c.2, c.3)
        });
    // Leave a factor of at least two for the convolution, as libvips does.
    let box_x = ((crop_w / f64::from(plan.resize_width)) / 2.0)
        .floor()
        .max(1.0) as u32;
    let box_y = ((crop_h / f64::from(plan.resize_height)) / 2.0)
        .floor()
        .max(1.0) as u32;
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

/// Average each `fx`×`fy` block into one pixel (edge blocks average what they have).
fn box_shrink(source: &Rgb, fx: u32, fy: u32) -> Rgb {
    let mut shrinker = BoxShrinker::new(source.width, source.height, fx, fy);
    for row in source.pixels.chunks_exact(source.width as usize * 3) {
        shrinker.push_row(row);
    }
    shrinker.finish()
}

/// An integer box shrink fed one RGB row at a time, so a decoder that
/// produces rows (PNG) never needs the full-size image in memory.
///
/// Rows are first added column by column into `column_sums` (a plain
/// element-wise add the compiler turns into SIMD), and only every `fy` rows
/// are the columns folded `fx` at a time into output pixels.
#[derive(Debug)]
pub(crate) struct BoxShrinker {
    source_width: usize,
    fx: usize,
    fy: usize,
    width: usize,
    /// Per source column and channel: the sum over the rows gathered so far.
    column_sums: Vec<u32>,
    rows_gathered: usize,
    pixels: Vec<u8>,
}

impl BoxShrinker {
    pub(crate) fn new(source_width: u32, source_height: u32, fx: u32, fy: u32) -> Self {
        let (source_width, fx, fy) = (
            source_width as usize,
            fx.max(1) as usize,
            fy.max(1) as usize,
        );
        let width = source_width.div_ceil(fx);
        let height = (source_height as usize).div_ceil(fy);
        let column_sums = if fx == 1 && fy == 1 {
            Vec::new()
        } else {
            vec![0; source_width * 3]
        };
        Self {
            source_width,
            fx,
            fy,
            width,
            column_sums,
            rows_gathered: 0,
            pixels: Vec::with_capacity(width * height * 3),
        }
    }

    /// One source row of `source_width` RGB pixels.
    pub(crate) fn push_row(&mut self, row: &[u8]) {
        let row = &row[..self.source_width * 3];
        if self.fx == 1 && self.fy == 1 {
            self.pixels.extend_from_slice(row);
            return;
        }
        for (sum, &value) in self.column_sums.iter_mut().zip(row) {
            *sum += u32::from(value);
        }
        self.row_done();
    }

    /// One source row of `source_width` RGBA pixels, composited over white
    /// on the way in (opaque pixels, most of a typical RGBA PNG, go straight in).
    pub(crate) fn push_rgba_row(&mut self, row: &[u8]) {
        let row = &row[..self.source_width * 4];
        if self.fx == 1 && self.fy == 1 {
            self.pixels.extend(row.chunks_exact(4).flat_map(over_white));
            return;
        }
        for (sum, rgba) in self
            .column_sums
            .chunks_exact_mut(3)
            .zip(row.chunks_exact(4))
        {
            let rgb = if rgba[3] == 255 {
                [rgba[0], rgba[1], rgba[2]]
            } else {
                over_white(rgba)
            };
            sum[0] += u32::from(rgb[0]);
            sum[1] += u32::from(rgb[1]);
            sum[2] += u32::from(rgb[2]);
        }
        self.row_done();
    }

    fn row_done(&mut self) {
        self.rows_gathered += 1;
        if self.rows_gathered == self.fy {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let rows = self.rows_gathered;
        for block in self.column_sums.chunks(self.fx * 3) {
            let count = (block.len() / 3 * rows) as u32;
            let mut sum = [0u32; 3];
            for pixel in block.chunks_exact(3) {
                sum[0] += pixel[0];
                sum[1] += pixel[1];
                sum[2] += pixel[2];
            }
            self.pixels
                .extend(sum.map(|channel| ((channel + count / 2) / count) as u8));
        }
        self.column_sums.fill(0);
        self.rows_gathered = 0;
    }

    /// The shrunk image, with as many rows as were pushed (÷ `fy`, rounded up).
    pub(crate) fn finish(mut self) -> Rgb {
        if self.rows_gathered > 0 {
            self.emit();
        }
        let height = self.pixels.len() / (self.width * 3).max(1);
        Rgb {
            width: self.width as u32,
            height: height as u32,
            pixels: self.pixels,
        }
    }
}

/// Apply the EXIF orientation, making the image upright.
pub(super) fn orient(image: Rgb, orientation: Orientation) -> Rgb {
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
pub(super) fn pad(image: Rgb, plan: &FitPlan) -> Rgb {
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
