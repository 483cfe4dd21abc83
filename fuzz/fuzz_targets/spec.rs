//! Fuzz job-spec parsing and validation, and the zip entry names derived from
//! a valid spec: whatever the input, parsing never panics and no entry name
//! can leave its label folder.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zipfleet_shared::names::EntryNamer;
use zipfleet_shared::spec::{JobSpec, SpecLimits};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = JobSpec::parse(data, &SpecLimits::default()) else {
        return;
    };
    let _ = spec.fingerprint();
    let mut namer = EntryNamer::new();
    let mut seen = std::collections::HashSet::new();
    for image in &spec.images {
        let name = namer.entry_name(&image.label, &image.id, spec.output.format.extension());
        let parts: Vec<&str> = name.split('/').collect();
        assert_eq!(parts.len(), 2, "{name:?}");
        for part in parts {
            assert!(!part.is_empty() && part != "." && part != "..", "{name:?}");
            assert!(
                !part.contains('\\') && !part.chars().any(char::is_control),
                "{name:?}"
            );
        }
        assert!(seen.insert(name.to_lowercase()), "duplicate entry {name:?}");
    }
});
