//! Where the fleet-wide cache keeps each kind of entry (contract, "Cache"),
//! relative to the store's prefix (pass each key through
//! [`ObjectStore::own_key`](crate::store::ObjectStore::own_key)).
//!
//! The layout puts everything derived from one picture under names that can
//! be found from the picture itself, so erasing a job can list and delete
//! every entry of its pictures by prefix:
//!
//! | entry | key |
//! |---|---|
//! | a rendered image | `cache/renders/{content}/{settings}` — `content`: SHA-256 of the source's bytes; `settings`: SHA-256 of (render version, CPU class, output settings) |
//! | a web download's bytes | `cache/sources/{content}` |
//! | what a URL gave last (content id or the site's refusal) | `cache/urls/{SHA-256 of the URL}` |
//! | an `object` source's content id | `cache/objects/{SHA-256 of bucket \0 key}/{SHA-256 of the ETag}` |
//!
//! Hashes are lowercase hex. What each record may and may not depend on is
//! in ARCHITECTURE.md ("Cache records").

use crate::spec::OutputSpec;
use sha2::{Digest, Sha256};

/// Every rendered image, under one folder per source content.
pub const RENDERS: &str = "cache/renders/";
/// Every kept web download.
pub const SOURCES: &str = "cache/sources/";
/// Every URL record.
pub const URLS: &str = "cache/urls/";
/// Every object record, under one folder per (bucket, key).
pub const OBJECTS: &str = "cache/objects/";

/// The folder of every render of the picture whose bytes hash to `content`
/// (all output settings, render versions and CPU classes).
pub fn renders_of(content: &[u8; 32]) -> String {
    format!("{RENDERS}{}/", hex::encode(content))
}

/// One rendered image: the picture `content` rendered to `output` by
/// `render_version` of the pipeline on a CPU of `cpu_class`.
pub fn render(
    content: &[u8; 32],
    render_version: u32,
    cpu_class: &str,
    output: &OutputSpec,
) -> String {
    let mut settings = Sha256::new();
    settings.update(format!("zipfleet render v{render_version}\0{cpu_class}\0"));
    settings.update(serde_json::to_vec(output).expect("output settings serialize"));
    format!(
        "{}{}",
        renders_of(content),
        hex::encode(settings.finalize())
    )
}

/// A web download's bytes, by their SHA-256.
pub fn source(content: &[u8; 32]) -> String {
    format!("{SOURCES}{}", hex::encode(content))
}

/// What `url` gave last.
pub fn url(url: &str) -> String {
    format!("{URLS}{}", hex::encode(Sha256::digest(url.as_bytes())))
}

/// The folder of every record of the object `key` in `bucket` (`None`: the
/// store's own bucket), one per ETag it had.
pub fn object_records(bucket: Option<&str>, key: &str) -> String {
    let mut name = Sha256::new();
    name.update(bucket.unwrap_or("").as_bytes());
    name.update(b"\0");
    name.update(key.as_bytes());
    format!("{OBJECTS}{}/", hex::encode(name.finalize()))
}

/// The content an `object` source had under `etag`.
pub fn object(bucket: Option<&str>, key: &str, etag: &str) -> String {
    format!(
        "{}{}",
        object_records(bucket, key),
        hex::encode(Sha256::digest(etag.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_of_a_picture_is_under_a_prefix_named_by_it() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let output = OutputSpec::default();
        let render_a = render(&a, 1, "x", &output);
        assert!(render_a.starts_with(&renders_of(&a)), "{render_a}");
        assert!(render(
            &a,
            1,
            "x",
            &OutputSpec {
                width: 64,
                ..output
            }
        )
        .starts_with(&renders_of(&a)));
        assert!(!render(&b, 1, "x", &output).starts_with(&renders_of(&a)));
        assert_eq!(
            renders_of(&a),
            format!("cache/renders/{}/", "01".repeat(32))
        );
        assert_eq!(source(&a), format!("cache/sources/{}", "01".repeat(32)));
        let object_key = object(Some("bucket"), "uploads/dog.png", "\"etag-1\"");
        assert!(object_key.starts_with(&object_records(Some("bucket"), "uploads/dog.png")));
        assert!(object_key.starts_with(OBJECTS) && url("https://x.org/a").starts_with(URLS));
    }

    #[test]
    fn render_keys_change_with_version_cpu_and_settings() {
        let output = OutputSpec::default();
        let content = [7u8; 32];
        let base = render(&content, 1, "x", &output);
        assert_eq!(base, render(&content, 1, "x", &output));
        assert_ne!(
            base,
            render(&content, 2, "x", &output),
            "a render-version bump misses"
        );
        assert_ne!(base, render(&content, 1, "y", &output));
        assert_ne!(base, render(&[8u8; 32], 1, "x", &output));
        assert_ne!(
            base,
            render(
                &content,
                1,
                "x",
                &OutputSpec {
                    width: 225,
                    ..output
                }
            )
        );
        assert_ne!(
            base,
            render(
                &content,
                1,
                "x",
                &OutputSpec {
                    quality: 89,
                    ..output
                }
            )
        );
    }

    #[test]
    fn object_records_tell_bucket_from_key() {
        assert_ne!(
            object_records(Some("ab"), "c"),
            object_records(Some("a"), "bc")
        );
        assert_ne!(object(None, "k", "e1"), object(None, "k", "e2"));
    }
}
