//! No resurrection (contract, "Erasure and retention"): a job erased while a
//! worker still runs it must not have its data written back. Every write
//! that could bring a job's data back asks [`Tombstones`] before writing and
//! again right after (undoing the write if the answer changed meanwhile).
//!
//! The cache asks through a [`JobContext`], which names the job its work is
//! for; a worker's [`Tombstones`] are the status store's
//! ([`StatusTombstones`], wired in `crate::app::build_worker`).
//! [`NeverErased`] is the trivial implementation (tests, tools).

use async_trait::async_trait;
use std::sync::Arc;
use zipfleet_shared::status_store::StatusStore;

/// Whether a job has been erased (a tombstone is set for its id).
#[async_trait]
pub trait Tombstones: Send + Sync {
    /// `true` once `job_id` has been erased. When the answer cannot be had
    /// (the store is down), an implementation should say `true`: skipping a
    /// cache write costs a render later, resurrecting a picture costs trust.
    async fn erased(&self, job_id: &str) -> bool;
}

/// No job is ever erased (no tombstone store yet).
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverErased;

#[async_trait]
impl Tombstones for NeverErased {
    async fn erased(&self, _job_id: &str) -> bool {
        false
    }
}

/// The tombstones the status store keeps (`zipfleet:erased:{job_id}` on
/// Redis). A store that cannot answer counts as "erased" here: a cache
/// write skipped costs a render later, one that resurrects a picture
/// cannot be taken back.
pub(crate) struct StatusTombstones(pub(crate) Arc<dyn StatusStore>);

#[async_trait]
impl Tombstones for StatusTombstones {
    async fn erased(&self, job_id: &str) -> bool {
        self.0.is_erased(job_id).await.unwrap_or(true)
    }
}

/// The job a piece of work (a cache write) is done for.
#[derive(Clone, Copy)]
pub(crate) struct JobContext<'a> {
    pub(crate) job_id: &'a str,
    pub(crate) tombstones: &'a dyn Tombstones,
}

impl JobContext<'_> {
    /// Whether the job has been erased by now.
    pub(crate) async fn erased(&self) -> bool {
        self.tombstones.erased(self.job_id).await
    }
}
