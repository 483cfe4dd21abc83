//! The format of one cache entry, whatever its kind: a fixed header, JSON
//! metadata, then the body.
//!
//! The header: magic `ZFC1`, creation time (ms since the epoch), metadata
//! length, body length, SHA-256 of the metadata and of the body (88 bytes,
//! little-endian). An entry whose lengths or hashes disagree is damaged (a
//! miss, overwritten by the fresh work); one older than its TTL or dated in
//! the future beyond [`MAX_SKEW`] is stale (a miss too).

use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAGIC: &[u8; 4] = b"ZFC1";
/// magic, created (ms since the epoch), meta length, body length, two SHA-256.
pub(super) const HEADER: usize = 4 + 8 + 4 + 8 + 32 + 32;
/// Largest metadata an entry may carry.
pub(super) const MAX_META: u32 = 64 * 1024;
/// Entries dated this far in the future (clock skew) are not trusted.
const MAX_SKEW: Duration = Duration::from_secs(300);

/// An entry's header, parsed.
pub(super) struct Header {
    pub(super) created: u64,
    pub(super) meta_len: u32,
    pub(super) body_len: u64,
    pub(super) meta_sha: [u8; 32],
    pub(super) body_sha: [u8; 32],
}

/// A whole entry in memory: header, metadata, body.
pub(super) fn encode(meta: &[u8], body: &[u8]) -> Vec<u8> {
    let mut bytes = encode_header(
        now_millis(),
        meta,
        body.len() as u64,
        &Sha256::digest(body).into(),
    );
    bytes.extend_from_slice(meta);
    bytes.extend_from_slice(body);
    bytes
}

/// The header of an entry whose body (`body_len` bytes hashing to
/// `body_sha`) is written after it, created now.
pub(super) fn header_for(meta: &[u8], body_len: u64, body_sha: &[u8; 32]) -> Vec<u8> {
    encode_header(now_millis(), meta, body_len, body_sha)
}

fn encode_header(created: u64, meta: &[u8], body_len: u64, body_sha: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + meta.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&created.to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(meta));
    out.extend_from_slice(body_sha);
    out
}

pub(super) fn parse_header(bytes: &[u8]) -> Option<Header> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return None;
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let meta_len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if meta_len > MAX_META {
        return None;
    }
    Some(Header {
        created: u64_at(4),
        meta_len,
        body_len: u64_at(16),
        meta_sha: bytes[24..56].try_into().expect("32 bytes"),
        body_sha: bytes[56..88].try_into().expect("32 bytes"),
    })
}

/// (created, meta, body) of a whole entry, if its lengths and hashes agree.
pub(super) fn decode(bytes: &[u8]) -> Option<(u64, &[u8], &[u8])> {
    let header = parse_header(bytes)?;
    let meta_end = HEADER + header.meta_len as usize;
    if bytes.len() as u64 != meta_end as u64 + header.body_len {
        return None;
    }
    let (meta, body) = (&bytes[HEADER..meta_end], &bytes[meta_end..]);
    if Sha256::digest(meta).as_slice() != header.meta_sha
        || Sha256::digest(body).as_slice() != header.body_sha
    {
        return None;
    }
    Some((header.created, meta, body))
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The age of an entry created at `created` (ms), if it is within `ttl`.
pub(super) fn age_of(created: u64, ttl: Duration) -> Option<Duration> {
    let now = now_millis();
    if created > now + MAX_SKEW.as_millis() as u64 {
        return None;
    }
    let age = Duration::from_millis(now.saturating_sub(created));
    (age <= ttl).then_some(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_round_trips_and_any_damage_is_noticed() {
        let whole = encode(br#"{"a":1}"#, b"body bytes");
        let (created, meta, body) = decode(&whole).expect("intact");
        assert!(age_of(created, Duration::from_secs(1)).is_some());
        assert_eq!((meta, body), (&br#"{"a":1}"#[..], &b"body bytes"[..]));
        assert!(decode(&whole[..whole.len() - 1]).is_none(), "truncated");
        for at in [0, 20, HEADER + 2, whole.len() - 1] {
            let mut flipped = whole.clone();
            flipped[at] ^= 1;
            assert!(decode(&flipped).is_none(), "a flipped bit at {at}");
        }
    }

    #[test]
    fn entries_from_the_future_or_past_their_ttl_are_stale() {
        let now = now_millis();
        assert!(age_of(now + 3_600_000, Duration::MAX).is_none());
        assert!(age_of(now - 2_000, Duration::from_secs(1)).is_none());
        assert!(age_of(now - 2_000, Duration::from_secs(3)).is_some());
    }
}
