//! Cheap fingerprints of a rendered picture, for the dataset report: an exact
//! key, a perceptual hash and a flatness measure, all from the final upright
//! RGB pixels at output size that [`render`](crate::render) already holds (no
//! second decode).
//!
//! Everything is computed from one small grid: the picture averaged down to
//! 32×32 cells. Because `fill` stretches every source to the output size, the
//! same picture at any source size gives nearly the same output pixels, and
//! the averaging removes what re-encoding and resampling change (block
//! artefacts, ringing, sensor noise). The perceptual hash is the classic DCT
//! pHash: the 8×8 lowest frequencies of the 32×32 luma grid, each bit "above
//! the median of the 63 AC coefficients". Its threshold was chosen by
//! measurement on the shared corpus (ARCHITECTURE.md, "Dataset report";
//! `cargo run -p zipfleet-imaging --example signatures`).

use crate::pixels::Rgb;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Side of the averaging grid the hash and flatness are computed on.
pub const GRID: usize = 32;

/// Largest pHash Hamming distance at which two pictures count as copies of
/// each other. Measured on the corpus (ARCHITECTURE.md, "Dataset report"):
/// re-encoded, resized, converted and slightly cropped copies are at most 8
/// from their original (4 without crops); the nearest two distinct pictures
/// are 16 apart.
pub const DUPLICATE_DISTANCE: u32 = 10;

/// Largest mean difference (0–255 per channel) of the 4×4 colour layouts of
/// two copies. The pHash sees only the luma's structure, so it also matches
/// a wallpaper's light and dark versions (the same drawing, recoloured);
/// copies keep their colours within a few levels (at most 2.5 measured),
/// recolourings do not (the pHash-near light/dark pairs: 34 and more).
pub const DUPLICATE_COLOUR_DISTANCE: f32 = 12.0;

/// A picture whose grid colours have a standard deviation below this (on the
/// 0–255 scale, the larger of the three channels) and whose pixels' luma
/// varies less than [`BLANK_DETAIL`] is (almost) one flat colour.
pub const BLANK_SPREAD: f32 = 2.0;

/// Standard deviation of the pixels' luma (0–255) below which a picture with
/// no large-scale structure is blank: sensor noise on a black or grey frame
/// stays under it, a flat background with small drawings on it does not.
pub const BLANK_DETAIL: f32 = 5.0;

/// The fingerprints of one rendered picture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// A 64-bit hash of the output pixels (and size): equal for the same file
    /// or the same decoded picture.
    pub exact: u64,
    /// DCT perceptual hash; near in Hamming distance for copies.
    pub phash: u64,
    /// Standard deviation of the grid colours (0–255, largest channel); near
    /// zero for a flat picture.
    pub spread: f32,
    /// Standard deviation of the pixels' luma (0–255): fine detail and noise.
    pub detail: f32,
    /// Mean colour of each cell of a 4×4 grid, row by row.
    pub colours: [[u8; 3]; 16],
}

impl Signature {
    /// The fingerprints of a rendered picture.
    pub fn of(image: &Rgb) -> Self {
        let grid = ColourGrid::of(image);
        Self {
            exact: exact_key(image),
            phash: phash(&grid.luma()),
            spread: grid.spread(),
            detail: grid.detail,
            colours: grid.layout(),
        }
    }

    /// Whether `other` is a copy of the same picture: the same pixels, or a
    /// near pHash and near colours.
    pub fn same_picture(&self, other: &Signature) -> bool {
        self.exact == other.exact
            || (self.distance(other) <= DUPLICATE_DISTANCE
                && self.colour_distance(other) <= DUPLICATE_COLOUR_DISTANCE)
    }

    /// Mean absolute difference of the 4×4 colour layouts (0–255).
    pub fn colour_distance(&self, other: &Signature) -> f32 {
        let total: u32 = self
            .colours
            .iter()
            .flatten()
            .zip(other.colours.iter().flatten())
            .map(|(a, b)| u32::from(a.abs_diff(*b)))
            .sum();
        total as f32 / 48.0
    }

    /// pHash Hamming distance.
    pub fn distance(&self, other: &Signature) -> u32 {
        (self.phash ^ other.phash).count_ones()
    }

    /// (Almost) one flat colour.
    pub fn is_blank(&self) -> bool {
        self.spread < BLANK_SPREAD && self.detail < BLANK_DETAIL
    }
}

/// FNV-1a over the pixels, eight bytes at a time, seeded with the size.
/// Stable across runs and builds (a cached render's key stays valid).
fn exact_key(image: &Rgb) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |word: u64| {
        hash ^= word;
        hash = hash.wrapping_mul(PRIME);
        hash ^= hash >> 29;
    };
    mix(u64::from(image.width) << 32 | u64::from(image.height));
    let mut chunks = image.pixels.chunks_exact(8);
    for chunk in &mut chunks {
        mix(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mix(u64::from_le_bytes(tail) ^ 0xff);
    hash
}

/// The picture averaged into `GRID`×`GRID` cells, per channel.
pub struct ColourGrid {
    /// `[r, g, b]` means, row by row.
    cells: Vec<[f32; 3]>,
    /// Standard deviation of the pixels' luma.
    pub detail: f32,
}

impl ColourGrid {
    /// Area averages over cells whose bounds are `i * size / GRID` (each cell
    /// at least one pixel, so outputs smaller than the grid work too).
    pub fn of(image: &Rgb) -> Self {
        let (width, height) = (image.width as usize, image.height as usize);
        let bounds = |size: usize, index: usize| {
            let start = (index * size / GRID).min(size.saturating_sub(1));
            let end = ((index + 1) * size / GRID).max(start + 1).min(size);
            (start, end)
        };
        let columns: Vec<(usize, usize)> = (0..GRID).map(|gx| bounds(width, gx)).collect();
        let mut cells = Vec::with_capacity(GRID * GRID);
        let (mut luma_sum, mut luma_squares) = (0u64, 0u64);
        for gy in 0..GRID {
            let (y0, y1) = bounds(height, gy);
            for &(x0, x1) in &columns {
                let mut sum = [0u32; 3];
                for y in y0..y1 {
                    let row = &image.pixels[(y * width + x0) * 3..(y * width + x1) * 3];
                    for pixel in row.chunks_exact(3) {
                        let (r, g, b) = (
                            u32::from(pixel[0]),
                            u32::from(pixel[1]),
                            u32::from(pixel[2]),
                        );
                        sum[0] += r;
                        sum[1] += g;
                        sum[2] += b;
                        let luma = u64::from((77 * r + 150 * g + 29 * b) >> 8);
                        luma_sum += luma;
                        luma_squares += luma * luma;
                    }
                }
                let count = ((y1 - y0) * (x1 - x0)).max(1) as f32;
                cells.push([
                    sum[0] as f32 / count,
                    sum[1] as f32 / count,
                    sum[2] as f32 / count,
                ]);
            }
        }
        // Pixels visited (an output smaller than the grid visits some twice).
        let rows: usize = (0..GRID)
            .map(|gy| bounds(height, gy))
            .map(|(y0, y1)| y1 - y0)
            .sum();
        let counted = (rows * columns.iter().map(|(x0, x1)| x1 - x0).sum::<usize>()).max(1) as f64;
        let mean = luma_sum as f64 / counted;
        let detail = (luma_squares as f64 / counted - mean * mean)
            .max(0.0)
            .sqrt() as f32;
        Self { cells, detail }
    }

    /// The 4×4 colour layout: means of 8×8 blocks of cells.
    pub fn layout(&self) -> [[u8; 3]; 16] {
        let mut layout = [[0u8; 3]; 16];
        for (block, colour) in layout.iter_mut().enumerate() {
            let (bx, by) = (block % 4 * (GRID / 4), block / 4 * (GRID / 4));
            let mut sum = [0.0f32; 3];
            for y in by..by + GRID / 4 {
                for cell in &self.cells[y * GRID + bx..y * GRID + bx + GRID / 4] {
                    for c in 0..3 {
                        sum[c] += cell[c];
                    }
                }
            }
            *colour = sum.map(|v| (v / (GRID * GRID / 16) as f32).round() as u8);
        }
        layout
    }

    /// Luma (BT.601) of each cell.
    pub fn luma(&self) -> Vec<f32> {
        self.cells
            .iter()
            .map(|[r, g, b]| 0.299 * r + 0.587 * g + 0.114 * b)
            .collect()
    }

    /// The largest per-channel standard deviation of the cells.
    pub fn spread(&self) -> f32 {
        let n = self.cells.len() as f32;
        (0..3)
            .map(|c| {
                let mean = self.cells.iter().map(|cell| cell[c]).sum::<f32>() / n;
                let variance = self
                    .cells
                    .iter()
                    .map(|cell| (cell[c] - mean).powi(2))
                    .sum::<f32>()
                    / n;
                variance.sqrt()
            })
            .fold(0.0, f32::max)
    }
}

/// `cos((2x + 1) u π / 2N)` for the 8 lowest frequencies `u` of a 32-point DCT-II.
fn dct_table() -> &'static [[f32; GRID]; 8] {
    static TABLE: OnceLock<[[f32; GRID]; 8]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [[0.0; GRID]; 8];
        for (u, row) in table.iter_mut().enumerate() {
            for (x, value) in row.iter_mut().enumerate() {
                *value = (std::f32::consts::PI * (2 * x + 1) as f32 * u as f32 / (2 * GRID) as f32)
                    .cos();
            }
        }
        table
    })
}

/// DCT pHash of a `GRID`×`GRID` luma grid: the 8×8 lowest frequencies, bit
/// `8v + u` set when that coefficient is above the median of the 63 AC ones
/// (bit 0, the DC term, is always clear).
pub fn phash(luma: &[f32]) -> u64 {
    assert_eq!(luma.len(), GRID * GRID);
    let table = dct_table();
    // Rows first: 32 rows × 8 horizontal frequencies.
    let mut rows = [[0.0f32; 8]; GRID];
    for (y, out) in rows.iter_mut().enumerate() {
        let line = &luma[y * GRID..(y + 1) * GRID];
        for (u, coefficient) in out.iter_mut().enumerate() {
            *coefficient = line.iter().zip(&table[u]).map(|(a, b)| a * b).sum();
        }
    }
    let mut coefficients = [0.0f32; 64];
    for v in 0..8 {
        for u in 0..8 {
            coefficients[v * 8 + u] = (0..GRID).map(|y| rows[y][u] * table[v][y]).sum();
        }
    }
    let mut ac = coefficients[1..].to_vec();
    ac.sort_unstable_by(f32::total_cmp);
    let median = ac[ac.len() / 2];
    coefficients
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, c)| **c > median)
        .fold(0u64, |hash, (bit, _)| hash | 1 << bit)
}

/// Difference hash (dHash) of a 9×8 luma grid of the picture: bit set when a
/// cell is brighter than its right neighbour. Kept for the measurement tool,
/// which compares it with [`phash`]; the report uses pHash.
pub fn dhash(image: &Rgb) -> u64 {
    let (width, height) = (image.width as usize, image.height as usize);
    let mut cells = [[0.0f32; 9]; 8];
    for (gy, row) in cells.iter_mut().enumerate() {
        let (y0, y1) = (
            gy * height / 8,
            ((gy + 1) * height / 8).max(gy * height / 8 + 1).min(height),
        );
        for (gx, cell) in row.iter_mut().enumerate() {
            let (x0, x1) = (
                gx * width / 9,
                ((gx + 1) * width / 9).max(gx * width / 9 + 1).min(width),
            );
            let mut sum = 0.0;
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = &image.pixels[(y * width + x) * 3..][..3];
                    sum +=
                        0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
                }
            }
            *cell = sum / ((y1 - y0) * (x1 - x0)).max(1) as f32;
        }
    }
    let mut hash = 0u64;
    for (gy, row) in cells.iter().enumerate() {
        for gx in 0..8 {
            if row[gx] > row[gx + 1] {
                hash |= 1 << (gy * 8 + gx);
            }
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Rgb {
        let mut pixels = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..height {
            for x in 0..width {
                pixels.extend_from_slice(&f(x, y));
            }
        }
        Rgb {
            width,
            height,
            pixels,
        }
    }

    /// A photo-like picture: many smooth waves with amplitudes falling with
    /// frequency (as in natural images), phases from a fixed seed.
    fn scene(x: u32, y: u32, size: u32) -> [u8; 3] {
        let (fx, fy) = (x as f32 / size as f32, y as f32 / size as f32);
        let mut state = 0x2545_f491_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as f32 / u32::MAX as f32
        };
        let mut v = 0.0;
        for u in 1..7 {
            for w in 1..7 {
                let (amplitude, phase) = (
                    next() * 40.0 / (u + w) as f32,
                    next() * std::f32::consts::TAU,
                );
                v += amplitude * ((u as f32 * fx + w as f32 * fy * 0.7) * 3.1 + phase).cos();
            }
        }
        let v = (128.0 + v).clamp(0.0, 255.0);
        [v as u8, (255.0 - v) as u8, (v * 0.5) as u8]
    }

    #[test]
    fn the_same_pixels_have_the_same_key_and_flat_pictures_are_blank() {
        let a = picture(224, 224, |x, y| scene(x, y, 224));
        let b = a.clone();
        assert_eq!(Signature::of(&a).exact, Signature::of(&b).exact);
        let mut c = a.clone();
        c.pixels[1000] ^= 1;
        assert_ne!(Signature::of(&a).exact, Signature::of(&c).exact);
        assert!(!Signature::of(&a).is_blank());
        let grey = picture(224, 224, |x, y| {
            [128 + ((x * 31 + y * 17) % 3) as u8, 128, 128]
        });
        assert!(
            Signature::of(&grey).is_blank(),
            "sensor-like noise on grey is still blank"
        );
        let icons = picture(224, 224, |x, y| {
            if x % 28 < 6 && y % 28 < 6 {
                [200, 200, 220]
            } else {
                [40, 60, 120]
            }
        });
        assert!(
            !Signature::of(&icons).is_blank(),
            "a flat background with small drawings is a picture"
        );
        let gradient = picture(224, 224, |x, _| [x as u8, x as u8, x as u8]);
        assert!(!Signature::of(&gradient).is_blank());
    }

    #[test]
    fn noise_and_small_shifts_keep_the_hash_near_and_different_pictures_far() {
        let a = picture(224, 224, |x, y| scene(x, y, 224));
        let noisy = picture(224, 224, |x, y| {
            scene(x, y, 224).map(|v| v.saturating_add(((x ^ y) % 5) as u8))
        });
        let shifted = picture(224, 224, |x, y| scene(x + 2, y + 1, 224));
        let other = picture(224, 224, |x, y| scene(y, 223 - x, 224));
        let (sa, sn, ss, so) = (
            Signature::of(&a),
            Signature::of(&noisy),
            Signature::of(&shifted),
            Signature::of(&other),
        );
        assert!(sa.distance(&sn) <= 4, "{}", sa.distance(&sn));
        assert!(sa.same_picture(&ss), "{}", sa.distance(&ss));
        assert!(!sa.same_picture(&so), "{}", sa.distance(&so));
        // Same drawing, darker colours: the structure matches, the colours do not.
        let dark = picture(224, 224, |x, y| scene(x, y, 224).map(|v| v / 3));
        let sd = Signature::of(&dark);
        assert!(sa.distance(&sd) <= 4, "{}", sa.distance(&sd));
        assert!(
            !sa.same_picture(&sd),
            "colour distance {}",
            sa.colour_distance(&sd)
        );
    }

    #[test]
    fn outputs_smaller_than_the_grid_still_hash() {
        let tiny = picture(8, 5, |x, y| [(x * 30) as u8, (y * 50) as u8, 0]);
        let signature = Signature::of(&tiny);
        assert!(!signature.is_blank());
        assert_ne!(signature.phash, 0);
    }
}
