//! Geometry of the three fits: how much a source may shrink on load, and how
//! a decoded image becomes the output (crop, box pre-shrink, resize, canvas).
//!
//! All sizes are planned in the image's *stored* orientation, so the EXIF
//! rotation is applied to the small resized image instead of the large
//! decoded one.

use crate::output::{Fit, Output};
use image::metadata::Orientation;

/// How one decoded image becomes the output.
#[derive(Debug, Clone, PartialEq)]
pub struct FitPlan {
    /// Part of the decoded image to use (left, top, width, height); `cover` crops.
    pub crop: Option<(f64, f64, f64, f64)>,
    /// The integer box shrink applied before the convolution, per axis
    /// (1 = none): it leaves a factor of two or less for Lanczos3, as
    /// libvips does.
    pub box_shrink_x: u32,
    pub box_shrink_y: u32,
    /// Size to resize to, in stored orientation.
    pub resize_width: u32,
    pub resize_height: u32,
    /// The final canvas (upright) and where the upright image sits on it.
    pub canvas_width: u32,
    pub canvas_height: u32,
    pub offset_x: u32,
    pub offset_y: u32,
}

/// Whether the orientation turns the image by a quarter (width and height swap).
pub(crate) fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The output box in stored orientation.
fn stored_target(output: &Output, orientation: Orientation) -> (u32, u32) {
    if swaps_axes(orientation) {
        (output.height, output.width)
    } else {
        (output.width, output.height)
    }
}

/// Plan the fit of a `width`×`height` decoded image (stored orientation).
pub fn plan_fit(width: u32, height: u32, output: &Output, orientation: Orientation) -> FitPlan {
    let (tw, th) = stored_target(output, orientation);
    let (w, h) = (f64::from(width), f64::from(height));
    let mut plan = FitPlan {
        crop: None,
        box_shrink_x: 1,
        box_shrink_y: 1,
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
    let (crop_w, crop_h) = plan.crop.map_or((w, h), |crop| (crop.2, crop.3));
    // Leave a factor of at least two for the convolution, as libvips does.
    plan.box_shrink_x = ((crop_w / f64::from(plan.resize_width)) / 2.0)
        .floor()
        .max(1.0) as u32;
    plan.box_shrink_y = ((crop_h / f64::from(plan.resize_height)) / 2.0)
        .floor()
        .max(1.0) as u32;
    plan
}

/// The smallest decoded size (stored orientation) from which the fit only
/// ever shrinks: what shrink-on-load may reduce the source to.
pub(crate) fn needed_source_size(
    width: u32,
    height: u32,
    output: &Output,
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

/// The integer box shrink the resize would apply first to the full-size
/// source, per axis: what a decoder that shrinks while it decodes (libwebp,
/// the PNG row shrink) may reduce the source by without changing the
/// result's geometry.
pub(crate) fn shrink_on_load_factors(
    width: u32,
    height: u32,
    output: &Output,
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
