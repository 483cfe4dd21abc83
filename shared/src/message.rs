//! The job message the broker carries from the API to a worker.
//!
//! Small specs travel inline. A spec larger than the claim-check threshold is
//! written to the object store (`PREFIX/specs/JOB_ID.json`) and the message
//! carries only its location, keeping every broker's messages small (SQS
//! refuses messages over 256 KiB).

use crate::spec::{is_valid_job_id, JobSpec};
use crate::status::Location;
use crate::store::{ObjectStore, StoreError};
use serde::{Deserialize, Serialize};

/// Body of a message on the jobs queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobMessage {
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub job_id: String,
    /// The spec, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<JobSpec>,
    /// Where the spec is kept when it was too large to travel inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_ref: Option<Location>,
}

/// A job message as a worker received it: the job and where its spec is,
/// decided once ([`JobMessage::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedJob {
    pub job_id: String,
    pub spec: SpecPayload,
}

/// Where a received job's spec is: in the message, or in the object store.
#[derive(Debug, Clone, PartialEq)]
pub enum SpecPayload {
    Inline(JobSpec),
    /// Claim check: read the spec from this location.
    ClaimCheck(Location),
}

/// Why a message on the jobs queue cannot be processed. Permanent: such a
/// message goes to the dead-letter queue.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("not a job message: {0}")]
    NotAJob(String),
    #[error("job message carries neither a spec nor a spec reference")]
    NoSpec,
    #[error("job message carries both a spec and a spec reference")]
    BothSpecs,
    #[error("job message has an invalid job_id {0:?}")]
    BadJobId(String),
}

impl JobMessage {
    pub fn inline(job_id: &str, spec: JobSpec) -> Self {
        Self {
            job_id: job_id.to_string(),
            spec: Some(spec),
            spec_ref: None,
        }
    }

    pub fn claim_check(job_id: &str, location: Location) -> Self {
        Self {
            job_id: job_id.to_string(),
            spec: None,
            spec_ref: Some(location),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a job message always serializes")
    }

    /// The message body for a job: the spec inline, or — when that would be
    /// larger than `threshold` bytes — the spec written to
    /// `PREFIX/specs/JOB_ID.json` and only its location in the message.
    pub async fn pack(
        store: &dyn ObjectStore,
        job_id: &str,
        spec: &JobSpec,
        threshold: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let inline = Self::inline(job_id, spec.clone()).to_bytes();
        if inline.len() as u64 <= threshold {
            return Ok(inline);
        }
        let key = store.own_key(&format!("specs/{job_id}.json"));
        let spec_bytes = serde_json::to_vec(spec).expect("a spec always serializes");
        store
            .put_bytes(&key, spec_bytes.into(), "application/json")
            .await?;
        Ok(Self::claim_check(
            job_id,
            Location {
                bucket: store.bucket().to_string(),
                key,
            },
        )
        .to_bytes())
    }

    /// Parse a message body, checking its envelope (not yet the spec's
    /// rules): the job id, and exactly one of spec and spec reference.
    pub fn parse(bytes: &[u8]) -> Result<ReceivedJob, MessageError> {
        let message: JobMessage =
            serde_json::from_slice(bytes).map_err(|err| MessageError::NotAJob(err.to_string()))?;
        if !is_valid_job_id(&message.job_id) {
            return Err(MessageError::BadJobId(message.job_id));
        }
        let spec = match (message.spec, message.spec_ref) {
            (Some(spec), None) => SpecPayload::Inline(spec),
            (None, Some(location)) => SpecPayload::ClaimCheck(location),
            (None, None) => return Err(MessageError::NoSpec),
            (Some(_), Some(_)) => return Err(MessageError::BothSpecs),
        };
        Ok(ReceivedJob {
            job_id: message.job_id,
            spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed_messages() {
        let spec = JobSpec::parse_unvalidated(
            br#"{"images":[{"id":"1","label":"a","url":"http://x.org/a"}]}"#,
        )
        .unwrap();
        let message = JobMessage::inline("j1", spec.clone());
        assert_eq!(
            JobMessage::parse(&message.to_bytes()).unwrap(),
            ReceivedJob {
                job_id: "j1".into(),
                spec: SpecPayload::Inline(spec.clone())
            }
        );
        let location = Location {
            bucket: "b".into(),
            key: "specs/j1.json".into(),
        };
        let checked = JobMessage::claim_check("j1", location.clone()).to_bytes();
        assert_eq!(
            JobMessage::parse(&checked).unwrap().spec,
            SpecPayload::ClaimCheck(location.clone())
        );
        let both = JobMessage {
            spec_ref: Some(location),
            ..message
        };
        assert!(matches!(
            JobMessage::parse(&both.to_bytes()),
            Err(MessageError::BothSpecs)
        ));
        assert!(matches!(
            JobMessage::parse(b"hello"),
            Err(MessageError::NotAJob(_))
        ));
        assert!(matches!(
            JobMessage::parse(br#"{"job_id":"j1"}"#),
            Err(MessageError::NoSpec)
        ));
        assert!(matches!(
            JobMessage::parse(br#"{"job_id":"../x","spec_ref":{"bucket":"b","key":"k"}}"#),
            Err(MessageError::BadJobId(_))
        ));
        assert!(matches!(
            JobMessage::parse(br#"{"job_id":"j","spec":{"images":[]},"evil":1}"#),
            Err(MessageError::NotAJob(_))
        ));
    }
}
