//! Error codes that leave zipfleet: per-image codes (in `skipped` and the
//! manifest) and job-level codes (in the status document's `error`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why one image was left out of the zip. The set is fixed by the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageErrorCode {
    /// The URL points at an address zipfleet refuses to reach (loopback, private, metadata...).
    BlockedAddress,
    /// The download could not be made (DNS failure, connection refused, reset...).
    FetchFailed,
    /// The download took too long or stalled.
    FetchTimeout,
    /// The server answered with a non-success HTTP status.
    HttpStatus,
    /// The object does not exist in the object store.
    NotFound,
    /// The file is larger than the download size limit.
    TooLarge,
    /// The image has more pixels than zipfleet will decode.
    TooManyPixels,
    /// The bytes are not an image format zipfleet reads (HTML, SVG, PDF...).
    UnsupportedFormat,
    /// The image is corrupt or truncated.
    DecodeFailed,
}

impl ImageErrorCode {
    pub const ALL: [ImageErrorCode; 9] = [
        Self::BlockedAddress,
        Self::FetchFailed,
        Self::FetchTimeout,
        Self::HttpStatus,
        Self::NotFound,
        Self::TooLarge,
        Self::TooManyPixels,
        Self::UnsupportedFormat,
        Self::DecodeFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlockedAddress => "blocked_address",
            Self::FetchFailed => "fetch_failed",
            Self::FetchTimeout => "fetch_timeout",
            Self::HttpStatus => "http_status",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::TooManyPixels => "too_many_pixels",
            Self::UnsupportedFormat => "unsupported_format",
            Self::DecodeFailed => "decode_failed",
        }
    }
}

impl fmt::Display for ImageErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a whole job ended `failed` or `cancelled`. When a job fails because of
/// one image (`on_image_error: fail`), the job's error code is that image's
/// code and the message names the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobErrorCode {
    /// The job message or spec could not be used.
    InvalidSpec,
    /// A client cancelled the job.
    Cancelled,
    /// The zip grew past the configured maximum size.
    ZipTooLarge,
    /// The object store refused the zip or could not be reached, after retries.
    StoreFailed,
    /// The job was attempted the maximum number of times without finishing.
    TooManyAttempts,
    /// An unexpected internal error.
    Internal,
}

impl JobErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSpec => "invalid_spec",
            Self::Cancelled => "cancelled",
            Self::ZipTooLarge => "zip_too_large",
            Self::StoreFailed => "store_failed",
            Self::TooManyAttempts => "too_many_attempts",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for JobErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_codes_serialize_as_the_contract_names_them() {
        for code in ImageErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ImageErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
    }
}

/// The values a status document's `error.code` takes: a job-level code, or
/// the code of the image that failed the job. Serialized as the bare code
/// (the two sets share no name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum JobFailureCode {
    Job(JobErrorCode),
    Image(ImageErrorCode),
}

impl JobFailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Job(code) => code.as_str(),
            Self::Image(code) => code.as_str(),
        }
    }
}

impl From<JobErrorCode> for JobFailureCode {
    fn from(code: JobErrorCode) -> Self {
        Self::Job(code)
    }
}

impl From<ImageErrorCode> for JobFailureCode {
    fn from(code: ImageErrorCode) -> Self {
        Self::Image(code)
    }
}

impl fmt::Display for JobFailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for JobFailureCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
