//! No resurrection (contract, "Erasure and retention"): a job erased while a
//! worker still runs it must not have its data written back. Every write
//! that could bring a job's data back asks [`Tombstones`] before writing and
//! again right after (undoing the write if the answer changed meanwhile).
//!
//! The cache asks through a [`JobContext`], which names the job its work is
//! for. [`NeverErased`] is the stand-in until tombstones are stored: the
//! erasure work plugs the real [`Tombstones`] into `JobEnv::tombstones`
//! (`crate::app::build_worker`).

use async_trait::async_trait;

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
