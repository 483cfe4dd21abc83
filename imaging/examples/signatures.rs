//! Measures the dataset report's perceptual hash on the shared corpus: the
//! figures in ARCHITECTURE.md ("Dataset report") come from this tool.
//!
//! ```text
//! ../shared/corpus/fetch.sh /work/corpus
//! cargo run -p zipfleet-imaging --example signatures -- /work/corpus
//! ```
//!
//! For every corpus picture it makes copies (JPEG re-encoded at q50–95,
//! recompressed twice, resized 25–200%, converted to PNG and to lossy WebP,
//! cropped by a few pixels), runs originals and copies through the real
//! render path (`imaging::render`, 224×224 fill) and prints, for pHash (what
//! the report uses) and dHash, the share of copies within each Hamming
//! threshold of their original (true positives) and the number of pairs of
//! distinct corpus pictures within it (false positives). The corpus's
//! deliberate variants (a wallpaper's light and dark versions, its phone
//! crops) are counted apart. Last, the CPU cost: the signature against the
//! whole render, per picture. (The dataset report itself is the worker's;
//! its tests cover it.)
//!
//! Not part of any shipped binary.

#![allow(unsafe_code)] // libwebp's encoder, to make lossy WebP copies.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::{ImageEncoder, RgbImage};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use zipfleet_imaging::{self as imaging, signature, Fit, Output, OutputFormat, Signature};

/// (pHash distance, dHash distance, colour distance × 10).
type Distances = (u32, u32, u32);
type Pick = fn(&Distances, u32) -> bool;

const THRESHOLDS: [u32; 10] = [2, 4, 6, 8, 10, 12, 14, 16, 20, 24];
/// Copies larger than this are not made (a 200% copy of a 15 MP wallpaper).
const MAX_COPY_PIXELS: u64 = 17_000_000;

/// What a job gets when it names no output (the spec's default), which the
/// figures in ARCHITECTURE.md were measured with.
const OUTPUT: Output = Output {
    width: 224,
    height: 224,
    fit: Fit::Fill,
    format: OutputFormat::Jpeg,
    quality: 90,
};

struct Hashes {
    signature: Signature,
    dhash: u64,
}

impl Hashes {
    /// (pHash distance, dHash distance, colour distance ×10 rounded).
    fn against(&self, other: &Hashes) -> (u32, u32, u32) {
        (
            self.signature.distance(&other.signature),
            (self.dhash ^ other.dhash).count_ones(),
            (self.signature.colour_distance(&other.signature) * 10.0).round() as u32,
        )
    }
}

fn hashes(bytes: &[u8]) -> Option<Hashes> {
    let probe = imaging::probe(std::io::Cursor::new(bytes), &OUTPUT, 200_000_000).ok()?;
    let pixels = imaging::render_pixels(bytes, &probe).ok()?;
    Some(Hashes {
        signature: Signature::of(&pixels),
        dhash: signature::dhash(&pixels),
    })
}

fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(
            image,
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

fn png(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, PngFilter::Adaptive)
        .write_image(
            image,
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

fn webp(image: &RgbImage, quality: f32) -> Vec<u8> {
    let mut output: *mut u8 = std::ptr::null_mut();
    // SAFETY: the buffer is width × height × 3 bytes with that stride; libwebp
    // allocates `output`, which is copied and freed with WebPFree.
    unsafe {
        let size = libwebp_sys::WebPEncodeRGB(
            image.as_raw().as_ptr(),
            image.width() as i32,
            image.height() as i32,
            image.width() as i32 * 3,
            quality,
            &mut output,
        );
        assert!(size > 0, "libwebp encoded nothing");
        let bytes = std::slice::from_raw_parts(output, size).to_vec();
        libwebp_sys::WebPFree(output.cast());
        bytes
    }
}

fn scaled(image: &RgbImage, factor: f64) -> Option<RgbImage> {
    let (w, h) = (
        (f64::from(image.width()) * factor).round() as u32,
        (f64::from(image.height()) * factor).round() as u32,
    );
    (u64::from(w) * u64::from(h) <= MAX_COPY_PIXELS)
        .then(|| image::imageops::resize(image, w, h, FilterType::Triangle))
}

fn cropped(image: &RgbImage, pixels: u32) -> RgbImage {
    image::imageops::crop_imm(
        image,
        pixels,
        pixels,
        image.width() - 2 * pixels,
        image.height() - 2 * pixels,
    )
    .to_image()
}

/// The copies of one picture: (kind, encoded bytes).
fn copies(image: &RgbImage) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![
        ("jpeg q50", jpeg(image, 50)),
        ("jpeg q75", jpeg(image, 75)),
        ("jpeg q95", jpeg(image, 95)),
        ("png", png(image)),
        ("webp q75", webp(image, 75.0)),
    ];
    let twice = image::load_from_memory(&jpeg(image, 85)).unwrap().to_rgb8();
    out.push(("jpeg q85 twice", jpeg(&twice, 85)));
    for (kind, factor) in [
        ("resize 25%", 0.25),
        ("resize 50%", 0.5),
        ("resize 75%", 0.75),
        ("resize 150%", 1.5),
        ("resize 200%", 2.0),
    ] {
        if let Some(copy) = scaled(image, factor) {
            out.push((kind, jpeg(&copy, 90)));
        }
    }
    if let Some(half) = scaled(image, 0.5) {
        out.push(("50% as png", png(&half)));
        out.push(("50% as webp q60", webp(&half, 60.0)));
    }
    for (kind, pixels) in [
        ("crop 2px", 2),
        ("crop 4px", 4),
        ("crop 8px", 8),
        ("crop 16px", 16),
    ] {
        out.push((kind, jpeg(&cropped(image, pixels), 90)));
    }
    // A few pixels off a small copy are a larger share of it.
    if let Some(small) = scaled(image, 400.0 / f64::from(image.width())) {
        out.push(("400px wide, crop 4px", jpeg(&cropped(&small, 4), 90)));
    }
    out
}

/// The picture a corpus file is a variant of: "Kay-dark-1080x1920.png" and
/// "Kay-5120x2880.png" are both "Kay"; "adwaita-d.webp" is "adwaita".
fn family(name: &str) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let mut parts: Vec<&str> = stem.split('-').collect();
    if parts.len() > 1
        && parts.last().is_some_and(|p| {
            p.contains('x') && p.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
    {
        parts.pop();
    }
    if parts.len() > 1 && matches!(*parts.last().unwrap(), "dark" | "d" | "l") {
        parts.pop();
    }
    parts.join("-")
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/work/corpus".into()),
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();

    // Originals through the real path, timed.
    let mut originals: Vec<Hashes> = Vec::new();
    let mut signatures: Vec<Signature> = Vec::new();
    let (mut render_total, mut signature_total) = (Duration::ZERO, Duration::ZERO);
    let mut per_format: BTreeMap<String, (Duration, Duration)> = BTreeMap::new();
    for (path, name) in files.iter().zip(&names) {
        let bytes = std::fs::read(path).unwrap();
        let probe = imaging::probe(std::io::Cursor::new(&bytes), &OUTPUT, 200_000_000)
            .expect("corpus probes");
        // Best of three, so the figure is the work, not the machine's noise.
        let mut render_best = Duration::MAX;
        let mut signature_best = Duration::MAX;
        for round in 0..3 {
            let started = Instant::now();
            let rendered = imaging::render(&bytes, &probe).expect("corpus renders");
            render_best = render_best.min(started.elapsed());
            std::hint::black_box(rendered);
            let pixels = imaging::render_pixels(&bytes, &probe).unwrap();
            let started = Instant::now();
            let signature = std::hint::black_box(Signature::of(&pixels));
            signature_best = signature_best.min(started.elapsed());
            if round == 0 {
                signatures.push(signature);
                originals.push(Hashes {
                    signature,
                    dhash: signature::dhash(&pixels),
                });
            }
        }
        render_total += render_best;
        signature_total += signature_best;
        let format = name.rsplit('.').next().unwrap_or("").to_string();
        let entry = per_format.entry(format).or_default();
        entry.0 += render_best;
        entry.1 += signature_best;
    }

    println!("corpus: {} pictures in {}", names.len(), dir.display());
    println!(
        "\nflatness: grid spread (blank below {}) and pixel detail (blank below {}), lowest spreads",
        signature::BLANK_SPREAD,
        signature::BLANK_DETAIL
    );
    let mut spreads: Vec<(f32, f32, &str)> = signatures
        .iter()
        .zip(&names)
        .map(|(s, n)| (s.spread, s.detail, n.as_str()))
        .collect();
    spreads.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (spread, detail, name) in spreads.iter().take(6) {
        println!("  {spread:6.2} {detail:6.2}  {name}");
    }
    let min_detail = signatures
        .iter()
        .zip(&names)
        .min_by(|a, b| a.0.detail.total_cmp(&b.0.detail))
        .unwrap();
    println!(
        "  lowest detail: {:.2} ({})",
        min_detail.0.detail, min_detail.1
    );
    if std::env::var_os("FLATNESS_ONLY").is_some() {
        return;
    }

    // Pairs of corpus pictures: distinct pictures vs deliberate variants.
    let families: Vec<String> = names.iter().map(|n| family(n)).collect();
    let mut distinct_pairs: Vec<Distances> = Vec::new();
    let mut variant_pairs: Vec<(String, String, Distances)> = Vec::new();
    let mut closest_distinct: Vec<(u32, String, String)> = Vec::new();
    for i in 0..names.len() {
        for j in i + 1..names.len() {
            let distances = originals[i].against(&originals[j]);
            if families[i] == families[j] {
                variant_pairs.push((names[i].clone(), names[j].clone(), distances));
            } else {
                distinct_pairs.push(distances);
                closest_distinct.push((distances.0, names[i].clone(), names[j].clone()));
            }
        }
    }
    closest_distinct.sort();

    // Copies.
    let mut copy_distances: BTreeMap<&'static str, Vec<Distances>> = BTreeMap::new();
    let mut worst: Vec<(u32, &'static str, String)> = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap();
        let image = image::load_from_memory(&bytes)
            .expect("image decodes the corpus")
            .to_rgb8();
        for (kind, copy) in copies(&image) {
            let Some(h) = hashes(&copy) else {
                eprintln!("{}: {kind} copy did not render", names[i]);
                continue;
            };
            let distances = h.against(&originals[i]);
            copy_distances.entry(kind).or_default().push(distances);
            worst.push((distances.0, kind, names[i].clone()));
        }
        eprint!("\rcopies: {}/{}", i + 1, files.len());
    }
    eprintln!();
    worst.sort_by_key(|w| std::cmp::Reverse(w.0));

    let all_copies: Vec<Distances> = copy_distances
        .iter()
        .filter(|(k, _)| !k.contains("crop"))
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    let crops: Vec<Distances> = copy_distances
        .iter()
        .filter(|(k, _)| k.contains("crop"))
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    let rate = |list: &[Distances], t: u32, pick: Pick| {
        100.0 * list.iter().filter(|x| pick(x, t)).count() as f64 / list.len().max(1) as f64
    };
    let count = |list: &[Distances], t: u32, pick: Pick| list.iter().filter(|x| pick(x, t)).count();
    let with_colour: &str = &format!(
        "pHash and colour layout within {}",
        signature::DUPLICATE_COLOUR_DISTANCE
    );

    let picks: [(&str, Pick); 3] = [
        ("pHash (DCT 8x8 of 32x32 luma)", |x, t| x.0 <= t),
        ("dHash (9x8)", |x, t| x.1 <= t),
        (with_colour, |x, t| {
            x.0 <= t && x.2 <= (signature::DUPLICATE_COLOUR_DISTANCE * 10.0).round() as u32
        }),
    ];
    for (hash, pick) in picks {
        println!(
            "\n{hash}: {} copies (re-encode/resize/format), {} crops, {} distinct pairs, {} variant pairs",
            all_copies.len(),
            crops.len(),
            distinct_pairs.len(),
            variant_pairs.len()
        );
        println!("  t   TP copies   TP crops   FP distinct   variants within");
        for t in THRESHOLDS {
            let variants = variant_pairs.iter().filter(|v| pick(&v.2, t)).count();
            println!(
                "  {t:<3} {:>8.1}%  {:>8.1}%   {:>6}        {:>3}",
                rate(&all_copies, t, pick),
                rate(&crops, t, pick),
                count(&distinct_pairs, t, pick),
                variants
            );
        }
    }

    println!("\npHash distance per copy kind (max / mean), colour distance max:");
    for (kind, list) in &copy_distances {
        let max = list.iter().map(|x| x.0).max().unwrap_or(0);
        let mean = list.iter().map(|x| f64::from(x.0)).sum::<f64>() / list.len().max(1) as f64;
        let colour = list.iter().map(|x| x.2).max().unwrap_or(0) as f64 / 10.0;
        println!(
            "  {kind:<22} {max:>3} / {mean:5.2}   colour {colour:5.1}   (n={})",
            list.len()
        );
    }
    println!("\nworst copies (pHash):");
    for (p, kind, name) in worst.iter().take(8) {
        println!("  {p:>3}  {kind:<22} {name}");
    }
    println!("\nclosest distinct pairs (pHash):");
    for (p, a, b) in closest_distinct.iter().take(8) {
        println!("  {p:>3}  {a}  ~  {b}");
    }
    println!("\ndeliberate variants (pHash, dHash, colour):");
    for (a, b, (p, d, c)) in &variant_pairs {
        println!("  {p:>3} {d:>3} {:5.1}  {a}  ~  {b}", *c as f64 / 10.0);
    }

    println!("\nCPU: render (decode+resize+signature+encode) vs signature, best of 3, this build's opt-level");
    for (format, (render, signature)) in &per_format {
        println!(
            "  {format:<5} render {:>8.1} ms  signature {:>6.2} ms  {:.2}%",
            ms(*render),
            ms(*signature),
            100.0 * signature.as_secs_f64() / (*render - *signature).as_secs_f64()
        );
    }
    println!(
        "  all   render {:>8.1} ms  signature {:>6.2} ms  {:.2}% of the render without it (report on vs off)",
        ms(render_total),
        ms(signature_total),
        100.0 * signature_total.as_secs_f64() / (render_total - signature_total).as_secs_f64(),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
