//! The integer box shrink: averaging each block of pixels into one, fed a
//! row at a time so a decoder that produces rows (PNG) never holds the
//! full-size image. The resize's pre-shrink and the PNG decoder both use it.

use crate::pixels::{over_white, Rgb};

/// Average each `fx`×`fy` block into one pixel (edge blocks average what they have).
pub(crate) fn box_shrink(source: &Rgb, fx: u32, fy: u32) -> Rgb {
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

    /// The block size, per axis, this shrinker averages.
    pub(crate) fn factors(&self) -> (u32, u32) {
        (self.fx as u32, self.fy as u32)
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
