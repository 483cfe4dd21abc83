//! Where the fleet-wide cache keeps each kind of entry, under the store's
//! `PREFIX/cache/` — laid out so that everything derived from one picture
//! can be found and deleted (contract, "Erasure and retention"):
//!
//! - `renders/{content}/{settings}`: a rendered image, under the SHA-256 of
//!   its source's bytes, one per output setting;
//! - `sources/{content}`: a web download's bytes;
//! - `urls/{sha256(url)}`: what a URL gave last (its content, or its failure);
//! - `objects/{sha256(bucket \0 key)}/{sha256(etag)}`: an `object` source's
//!   content under one ETag.
//!
//! Keys are relative to `cache/`; the store adds its prefix. Hashes are
//! lowercase hex. What each record may and may not depend on is in
//! ARCHITECTURE.md ("Cache records").

use crate::spec::OutputSpec;
use sha2::{Digest, Sha256};

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b"\0");
        }
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// Every rendering of a picture with this content (SHA-256, hex).
pub fn renders_of(content: &str) -> String {
    format!("renders/{content}/")
}

/// A rendering of `content` with output settings whose digest is `settings`
/// ([`render_settings`]).
pub fn render(content: &str, settings: &str) -> String {
    format!("renders/{content}/{settings}")
}

/// The digest of everything besides the source's bytes that decides a
/// render's bytes: the pipeline's render version, the CPU's SIMD class
/// (instruction sets may round differently) and the output settings.
pub fn render_settings(render_version: u32, cpu_class: &str, output: &OutputSpec) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("zipfleet render v{render_version}\0{cpu_class}\0"));
    hasher.update(serde_json::to_vec(output).expect("output settings serialize"));
    hex::encode(hasher.finalize())
}

/// The kept bytes of a web download with this content.
pub fn source(content: &str) -> String {
    format!("sources/{content}")
}

/// What a URL gave last.
pub fn url_record(url: &str) -> String {
    format!("urls/{}", sha256_hex(&[url.as_bytes()]))
}

/// Every record of one object source, whatever its ETag (`bucket`: `None`
/// for the store's own).
pub fn object_records(bucket: Option<&str>, key: &str) -> String {
    format!(
        "objects/{}/",
        sha256_hex(&[bucket.unwrap_or("").as_bytes(), key.as_bytes()])
    )
}

/// The record of one object source under one ETag.
pub fn object_record(bucket: Option<&str>, key: &str, etag: &str) -> String {
    format!(
        "{}{}",
        object_records(bucket, key),
        sha256_hex(&[etag.as_bytes()])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pictures_entries_share_prefixes() {
        assert!(render("c0ffee", "s1").starts_with(&renders_of("c0ffee")));
        assert!(
            object_record(None, "u/a.png", "\"e1\"").starts_with(&object_records(None, "u/a.png"))
        );
        assert_ne!(object_records(None, "a"), object_records(Some("b"), "a"));
        assert_ne!(url_record("http://x/a"), url_record("http://x/b"));
        assert_eq!(url_record("http://x/a").len(), "urls/".len() + 64);
    }

    #[test]
    fn render_settings_change_with_version_cpu_and_output() {
        let output = OutputSpec::default();
        let base = render_settings(1, "x", &output);
        assert_eq!(base, render_settings(1, "x", &output));
        assert_eq!(base.len(), 64);
        assert_ne!(
            base,
            render_settings(2, "x", &output),
            "a render-version bump misses"
        );
        assert_ne!(base, render_settings(1, "y", &output));
        let wider = OutputSpec {
            width: 225,
            ..output
        };
        assert_ne!(base, render_settings(1, "x", &wider));
        let rougher = OutputSpec {
            quality: 89,
            ..output
        };
        assert_ne!(base, render_settings(1, "x", &rougher));
    }

    #[test]
    fn object_records_tell_bucket_from_key() {
        assert_ne!(
            object_records(Some("ab"), "c"),
            object_records(Some("a"), "bc")
        );
        assert_ne!(
            object_record(None, "k", "e1"),
            object_record(None, "k", "e2")
        );
    }
}
