//! Fuzz the whole image path a hostile upload takes: sniff, header probe,
//! decode, resize, orient, encode. Any panic, hang or oversized allocation is
//! a finding (in production a panic is caught per image; here it is a bug).

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use zipfleet_imaging::{probe, render, Fit, Output, OutputFormat};

fuzz_target!(|data: &[u8]| {
    let fit = match data.first().map(|b| b % 3) {
        Some(0) => Fit::Fill,
        Some(1) => Fit::Cover,
        _ => Fit::Contain,
    };
    let output = Output {
        width: 48,
        height: 32,
        fit,
        format: OutputFormat::Jpeg,
        quality: 80,
    };
    // The worker refuses images above its pixel cap and its memory budget
    // before decoding; the fuzzer runs with the same kind of limits.
    if let Ok(probed) = probe(Cursor::new(data), &output, 16_000_000) {
        if probed.working_bytes <= 256 * 1024 * 1024 {
            if let Ok(rendered) = render(data, &probed) {
                assert!(!rendered.bytes.is_empty());
            }
        }
    }
});
