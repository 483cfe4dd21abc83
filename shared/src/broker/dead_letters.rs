//! The dead-letter queue as operators see it: [`DeadLetter`] (one message,
//! with a stable id), the optional [`DeadLetters`] ability of a broker (list,
//! redrive, delete — all of them, one by id, or a job's), and the ids of
//! brokers that have none of their own.

use super::BrokerError;
use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// Why a message the broker dead-lettered by its delivery limit is there.
pub const EXCEEDED_MAX_DELIVERIES: &str = "exceeded max deliveries";
/// Longest preview of a dead letter's body, in characters.
pub const PREVIEW_CHARS: usize = 200;

/// One message of the dead-letter queue, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// The message's id, stable while it stays in the queue (SQS
    /// `MessageId`; RabbitMQ: the id the worker gave it, else a hash of its
    /// body and reason); what redriving or deleting one message names.
    pub id: String,
    /// Why it was dead-lettered, where the broker kept that.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// The start of the body (at most 200 characters, invalid UTF-8 replaced).
    #[schema(max_length = 200)]
    pub preview: String,
    /// The job id, if the body parses as far as a valid `job_id`.
    #[schema(required = true)]
    pub job_id: Option<String>,
}

impl DeadLetter {
    pub fn describe(id: impl Into<String>, reason: Option<String>, body: &[u8]) -> Self {
        let preview: String = String::from_utf8_lossy(body)
            .chars()
            .take(PREVIEW_CHARS)
            .collect();
        let job_id = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|value| {
                value
                    .get("job_id")
                    .and_then(|id| id.as_str())
                    .map(str::to_string)
            })
            .filter(|id| crate::spec::is_valid_job_id(id));
        Self {
            id: id.into(),
            reason,
            preview,
            job_id,
        }
    }
}

/// A fresh id for a message the worker dead-letters itself (brokers without
/// message ids keep it in a header).
pub fn new_dead_letter_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The id of a dead letter that carries none (one the broker moved by its
/// delivery limit): a hash of its reason and body, so the same message has the
/// same id at every listing. Identical messages share it; an operation by id
/// then takes the first of them.
pub fn dead_letter_digest(body: &[u8], reason: Option<&str>) -> String {
    let mut hash = Sha256::new();
    hash.update(reason.unwrap_or_default().as_bytes());
    hash.update([0]);
    hash.update(body);
    hex::encode(&hash.finalize()[..16])
}

/// Reading, redriving and deleting dead letters (operators' `/v1/dead-letters`
/// routes, and erasure).
///
/// Every operation that looks for particular messages scans at most the
/// queue's depth at its start, and leaves every message it does not select in
/// the queue, as it was (not counted as a delivery of a job, none lost).
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Up to `limit` messages, oldest first where the broker keeps an order;
    /// they stay in the queue.
    async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, BrokerError>;
    /// Messages waiting in the dead-letter queue (approximate on SQS).
    async fn depth(&self) -> Result<u64, BrokerError>;
    /// Go through at most `examine` messages (never more than the queue held
    /// when it began) and act on each as `pick` says, stopping after
    /// `at_most` picked; how many were picked. A redriven message leaves the
    /// dead-letter queue only after lane 0 of the jobs queue confirmed it, so
    /// none is lost (one may be duplicated if the broker fails in between;
    /// jobs are idempotent), and arrives as a first delivery; kept messages
    /// stay, their delivery counts untouched. The one primitive every
    /// operation below is made of.
    async fn pick(
        &self,
        examine: usize,
        at_most: u64,
        pick: &(dyn for<'a> Fn(&'a DeadLetter) -> Pick + Send + Sync),
    ) -> Result<u64, BrokerError>;

    /// Move up to `max` messages back to lane 0; how many moved. Callers
    /// bound `max` by [`DeadLetters::depth`], so that a message that fails
    /// again at once is not moved round and round.
    async fn redrive(&self, max: usize) -> Result<u64, BrokerError> {
        self.pick(max, max as u64, &|_| Pick::Redrive).await
    }
    /// Move the message with this id back to lane 0; `false` if no message has it.
    async fn redrive_one(&self, id: &str) -> Result<bool, BrokerError> {
        let picked = self
            .pick(usize::MAX, 1, &|letter| {
                Pick::when(letter.id == id, Pick::Redrive)
            })
            .await?;
        Ok(picked == 1)
    }
    /// Delete the message with this id; `false` if no message has it.
    async fn delete_one(&self, id: &str) -> Result<bool, BrokerError> {
        let picked = self
            .pick(usize::MAX, 1, &|letter| {
                Pick::when(letter.id == id, Pick::Delete)
            })
            .await?;
        Ok(picked == 1)
    }
    /// Delete every message of job `job_id` (erasure); how many there were.
    async fn delete_job(&self, job_id: &str) -> Result<u64, BrokerError> {
        let of_job = |letter: &DeadLetter| letter.job_id.as_deref() == Some(job_id);
        self.pick(usize::MAX, u64::MAX, &|letter| {
            Pick::when(of_job(letter), Pick::Delete)
        })
        .await
    }
}

/// What [`DeadLetters::pick`] does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Leave it in the queue.
    Keep,
    /// Publish it to lane 0 of the jobs queue (confirmed), then remove it.
    Redrive,
    /// Remove it.
    Delete,
}

impl Pick {
    /// `action` if `matches`, else [`Pick::Keep`].
    pub fn when(matches: bool, action: Pick) -> Pick {
        if matches {
            action
        } else {
            Pick::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_and_tell_reasons_apart() {
        let a = dead_letter_digest(b"{}", Some("x"));
        assert_eq!(a, dead_letter_digest(b"{}", Some("x")));
        assert_eq!(a.len(), 32);
        assert_ne!(a, dead_letter_digest(b"{}", Some("y")));
        assert_ne!(a, dead_letter_digest(b"{} ", Some("x")));
        assert_ne!(new_dead_letter_id(), new_dead_letter_id());
    }
}
