//! Reading a finished zip back for assertions.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// A zip's entries: name → bytes.
pub fn entries(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    entries_from_reader(file)
}

pub fn entries_from_bytes(bytes: Vec<u8>) -> BTreeMap<String, Vec<u8>> {
    entries_from_reader(std::io::Cursor::new(bytes))
}

fn entries_from_reader<R: Read + std::io::Seek>(reader: R) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(reader).expect("a valid zip");
    let mut entries = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        entries.insert(entry.name().to_string(), bytes);
    }
    entries
}

/// Decode an entry and return its size, asserting it is 8-bit RGB.
pub fn rgb_size(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(bytes).expect("entry decodes");
    assert_eq!(
        image.color(),
        image::ColorType::Rgb8,
        "entries are 8-bit RGB"
    );
    (image.width(), image.height())
}

pub fn manifest(entries: &BTreeMap<String, Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice(entries.get("manifest.json").expect("manifest.json present"))
        .expect("manifest is JSON")
}
