//! The operator page's files, embedded in the binary at compile time.
//!
//! One table: each file's path under `/ui/`, its content type and its bytes.
//! A file added under `assets/` is served only once it is listed here (so
//! nothing in the folder is published by accident).

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Path under `/ui/` (`index.html`, `views/fleet.js`, …).
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// FNV-1a of the body, computed at compile time: the `ETag`.
    hash: u64,
}

impl Asset {
    /// The entity tag of this build's copy (a strong validator).
    pub fn etag(&self) -> String {
        format!("\"{:016x}\"", self.hash)
    }
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("assets/", $path)),
            hash: fnv1a(include_bytes!(concat!("assets/", $path))),
        }
    };
}

/// Every file the page is made of.
pub static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("views/login.js", JS),
    asset!("views/fleet.js", JS),
    asset!("views/jobs.js", JS),
    asset!("views/job.js", JS),
    asset!("views/dead-letters.js", JS),
];

/// The asset at `path` (relative to `/ui/`), if there is one.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// 64-bit FNV-1a: enough to tell two builds' copies of a file apart, and
/// computable in a `const` context, so no hashing happens at run time.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}
