//! How the work on an image or a job stops short, in one vocabulary:
//! an image is [`Skip`]ped (left out of the zip, with a code and a message a
//! teacher can read), or its job is [`Interrupted`] (handed back to the queue
//! for another attempt); [`ImageFailure`] is either, so every step of an
//! image returns one `Result` and `?` carries both.

use crate::zipper::CacheUse;
use zipfleet_imaging::Rendered;
use zipfleet_shared::ImageErrorCode;

/// Why an image is left out of its zip, as the status and the manifest say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skip {
    pub(crate) code: ImageErrorCode,
    /// Short and readable by a child's teacher; may name the site, so it is
    /// logged at `debug` only.
    pub(crate) message: String,
    /// The site itself answered so (an HTTP 4xx; a body that is not an
    /// image): the only skips the failure cache may remember. A refusal
    /// decided here (blocked address, a limit of this worker's settings), a
    /// timeout, a 5xx or a DNS failure is not the site's answer.
    pub(crate) site_answer: bool,
}

impl Skip {
    /// A skip decided by this worker (or a passing failure).
    pub(crate) fn here(code: ImageErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            site_answer: false,
        }
    }

    /// A skip the site answered.
    pub(crate) fn from_site(code: ImageErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            site_answer: true,
        }
    }
}

/// A failure worth another attempt: its cause, kept as an error.
pub(crate) type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a job stopped without an outcome; its delivery goes back to the queue.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Interrupted {
    /// A backend (or this worker's disk) failed; another attempt may succeed.
    #[error("{during}: {cause}")]
    Transient {
        during: &'static str,
        #[source]
        cause: Cause,
    },
    /// The worker is shutting down.
    #[error("the worker is shutting down")]
    Shutdown,
    /// The job was erased: nothing of it may be written any more.
    #[error("the job was erased")]
    Erased,
}

impl Interrupted {
    pub(crate) fn transient(during: &'static str, cause: impl Into<Cause>) -> Self {
        Self::Transient {
            during,
            cause: cause.into(),
        }
    }
}

/// Why one image's work ended without a picture.
#[derive(Debug)]
pub(crate) enum ImageFailure {
    Skipped(Skip),
    Interrupted(Interrupted),
}

impl From<Skip> for ImageFailure {
    fn from(skip: Skip) -> Self {
        Self::Skipped(skip)
    }
}

impl From<Interrupted> for ImageFailure {
    fn from(interrupted: Interrupted) -> Self {
        Self::Interrupted(interrupted)
    }
}

/// An image rendered for the zip, and what the cache gave instead of new work.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) rendered: Rendered,
    /// `render`: the image itself; `source`: its download; `None`: nothing reused.
    pub(crate) cached: Option<CacheUse>,
    /// The SHA-256 (hex) of the source's bytes, when the cache took it:
    /// reported with the job's progress so an erasure finds the entries
    /// derived from it.
    pub(crate) content: Option<String>,
}

impl Done {
    /// Rendered now, from a fresh fetch.
    pub(crate) fn fresh(rendered: Rendered) -> Self {
        Self {
            rendered,
            cached: None,
            content: None,
        }
    }
}
