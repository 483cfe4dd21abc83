//! Getting an image's bytes onto local disk: from the web (http/https behind
//! the SSRF guard, with size and time limits) or from the object store.
//!
//! Downloads are spooled to a temporary file rather than held in memory, so
//! the number of downloads in flight costs disk, not the memory budget; the
//! budget is charged when the bytes are read back for decoding. Objects of a
//! local-directory store are used in place.

pub(crate) mod guard;

use crate::keyed::KeyedSlots;
use crate::outcome::{ImageFailure, Interrupted, Skip};
use bytes::Bytes;
use futures::StreamExt;
use guard::{AddressPolicy, GuardedResolver, ResolveError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt};
use url::{Host, Url};
use zipfleet_shared::config::{Limits, SourcePolicy};
use zipfleet_shared::retry::Transient;
use zipfleet_shared::spec::{ObjectSource, Source};
use zipfleet_shared::store::{ObjectStore, StoreError};
use zipfleet_shared::ImageErrorCode;

/// Sent with every request, so site owners can tell who is asking.
pub(crate) const USER_AGENT: &str = concat!(
    "zipfleet/",
    env!("CARGO_PKG_VERSION"),
    " (classroom image dataset builder)"
);

/// Why an image's bytes could not be had. `Display` is a message a teacher can read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("{0}")]
    Blocked(String),
    #[error("{0}")]
    Failed(String),
    /// The website's name does not resolve: asking again at once will not help.
    #[error("{0}")]
    UnknownHost(String),
    #[error("{host} took too long to send the image")]
    Timeout { host: String },
    #[error("{}", http_status_message(.host, *.status))]
    HttpStatus { host: String, status: u16 },
    #[error("{0}")]
    NotFound(String),
    #[error("the image is larger than the {limit_mib} MiB limit")]
    TooLarge { limit_mib: u64 },
    /// The object store is unreachable: not the image's fault, the job is retried.
    #[error("the object store is unavailable: {0}")]
    StoreUnavailable(String),
}

impl FetchError {
    pub(crate) fn code(&self) -> ImageErrorCode {
        match self {
            Self::Blocked(_) => ImageErrorCode::BlockedAddress,
            Self::Failed(_) | Self::UnknownHost(_) | Self::StoreUnavailable(_) => {
                ImageErrorCode::FetchFailed
            }
            Self::Timeout { .. } => ImageErrorCode::FetchTimeout,
            Self::HttpStatus { .. } => ImageErrorCode::HttpStatus,
            Self::NotFound(_) => ImageErrorCode::NotFound,
            Self::TooLarge { .. } => ImageErrorCode::TooLarge,
        }
    }

    /// The site itself answered so: an HTTP 4xx (not a timeout, a 5xx, a
    /// name that does not resolve, nor anything this worker decided).
    fn is_site_answer(&self) -> bool {
        matches!(self, Self::HttpStatus { status, .. } if (400..500).contains(status))
    }
}

impl Transient for FetchError {
    /// Worth one more try: a reset connection, a 5xx, a timeout.
    fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::StoreUnavailable(_) => true,
            // Never a 4xx (not even 429): the site said no; asking again at once is rude.
            Self::HttpStatus { status, .. } => *status >= 500,
            Self::Failed(_) => true,
            Self::Blocked(_) | Self::UnknownHost(_) | Self::NotFound(_) | Self::TooLarge { .. } => {
                false
            }
        }
    }
}

/// An image's bytes that could not be had: the image's skip, unless the
/// object store is unreachable (not the image's fault: the job is retried).
impl From<FetchError> for ImageFailure {
    fn from(err: FetchError) -> Self {
        match err {
            FetchError::StoreUnavailable(_) => {
                Interrupted::transient("reading an object image", err).into()
            }
            err => Skip {
                code: err.code(),
                message: err.to_string(),
                site_answer: err.is_site_answer(),
            }
            .into(),
        }
    }
}

fn http_status_message(host: &str, status: u16) -> String {
    match status {
        401 | 403 => format!("{host} would not let us use that image ({status})"),
        404 | 410 => format!("{host} says that image is not there ({status})"),
        429 => format!("{host} asked us to slow down ({status})"),
        500..=599 => format!("{host} had a problem sending that image ({status})"),
        _ => format!("{host} answered with an error ({status})"),
    }
}

/// An image's bytes on local disk.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// A file of a local-directory store, used in place.
    InPlace { path: PathBuf, size: u64 },
    /// A download spooled to a temporary file, deleted on drop.
    Spooled { file: tempfile::TempPath, size: u64 },
}

impl Fetched {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Self::InPlace { path, .. } => path,
            Self::Spooled { file, .. } => file,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        match self {
            Self::InPlace { size, .. } | Self::Spooled { size, .. } => *size,
        }
    }
}

/// Fetches images for every job of a worker.
pub(crate) struct Fetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    limits: Limits,
    store: Arc<dyn ObjectStore>,
    spool_dir: PathBuf,
    /// Courtesy: at most `ZIPFLEET_PER_HOST_CONCURRENCY` downloads at once per host.
    hosts: KeyedSlots,
}

/// The longest `Retry-After` a `429` or `503` may ask for and still be waited out (once).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

impl Fetcher {
    /// A fetcher with at most `per_host` downloads at once from one host.
    pub(crate) fn new(
        policy: &SourcePolicy,
        limits: &Limits,
        store: Arc<dyn ObjectStore>,
        spool_dir: PathBuf,
        per_host: usize,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(AddressPolicy::new(policy));
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
            // A proxy would resolve names itself, out of the guard's sight.
            .no_proxy()
            // Redirects are followed by hand, so each hop is checked.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(limits.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            client,
            policy,
            limits: limits.clone(),
            store,
            spool_dir,
            hosts: KeyedSlots::new(per_host),
        })
    }

    /// Fetch one image's bytes, retrying a transient failure once.
    pub(crate) async fn fetch(&self, source: &Source) -> Result<Fetched, FetchError> {
        // A site that sent `Retry-After` was already asked twice: no third time.
        let mut waited_out = false;
        let mut result = self.fetch_once(source, &mut waited_out).await;
        if !waited_out && matches!(&result, Err(err) if err.is_transient()) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            result = self.fetch_once(source, &mut waited_out).await;
        }
        result
    }

    async fn fetch_once(
        &self,
        source: &Source,
        waited_out: &mut bool,
    ) -> Result<Fetched, FetchError> {
        match source {
            Source::Url(url) => {
                let host = host_of(url);
                let mut first = true;
                loop {
                    let attempt =
                        tokio::time::timeout(self.limits.download_timeout, self.download(url))
                            .await
                            .unwrap_or(Err(Download::Failed(FetchError::Timeout {
                                host: host.clone(),
                            })));
                    match attempt {
                        Ok(fetched) => return Ok(fetched),
                        Err(Download::Failed(err)) => return Err(err),
                        // `429`/`503` with a short `Retry-After`: wait it out, ask once more.
                        Err(Download::RetryAfter { error, after }) => {
                            if !first || *waited_out {
                                return Err(error);
                            }
                            first = false;
                            *waited_out = true;
                            let after_ms = after.as_millis() as u64;
                            tracing::debug!(%host, after_ms, "the site asked us to come back later");
                            tracing::info!(
                                after_ms,
                                "a site asked us to come back later; waiting once"
                            );
                            tokio::time::sleep(after).await;
                        }
                    }
                }
            }
            Source::Object(object) => {
                tokio::time::timeout(self.limits.download_timeout, self.read_object(object))
                    .await
                    .unwrap_or_else(|_| {
                        // No key: this reason reaches `warn` logs (hand-back).
                        Err(FetchError::StoreUnavailable(
                            "reading an object timed out".into(),
                        ))
                    })
            }
        }
    }

    async fn download(&self, raw_url: &str) -> Result<Fetched, Download> {
        let mut url = Url::parse(raw_url)
            .map_err(|err| FetchError::Failed(format!("not a valid URL ({err})")))?;
        for _hop in 0..=self.limits.max_redirects {
            self.check_target(&url)?;
            let host = url.host_str().unwrap_or_default().to_string();
            // Held for the request and its whole body: one download slot of this host.
            let _slot = self.hosts.acquire(&host_key(&url)).await;
            let response = self
                .client
                .get(url.clone())
                .send()
                .await
                .map_err(|err| classify(&host, &err))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .ok_or_else(|| {
                        FetchError::Failed(format!("{host} redirected without saying where"))
                    })?;
                url = url.join(location).map_err(|_| {
                    FetchError::Failed(format!("{host} redirected to an invalid address"))
                })?;
                continue;
            }
            if !status.is_success() {
                let error = FetchError::HttpStatus {
                    host,
                    status: status.as_u16(),
                };
                if matches!(status.as_u16(), 429 | 503) {
                    if let Some(after) =
                        retry_after(response.headers()).filter(|after| *after <= MAX_RETRY_AFTER)
                    {
                        return Err(Download::RetryAfter { error, after });
                    }
                }
                return Err(error.into());
            }
            if response
                .content_length()
                .is_some_and(|len| len > self.limits.max_download_bytes)
            {
                return Err(self.too_large().into());
            }
            let body = response
                .bytes_stream()
                .map(|chunk| chunk.map_err(|err| classify(&host, &err)));
            return Ok(self.spool(body, &host).await?);
        }
        Err(FetchError::Failed(format!("{} redirected too many times", host_of(raw_url))).into())
    }

    /// Scheme, credentials and (for IP-literal hosts) the address, before any connection.
    fn check_target(&self, url: &Url) -> Result<(), FetchError> {
        let host = url.host_str().unwrap_or_default().to_string();
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Blocked(format!(
                "{host} sent us to a {} address, which zipfleet does not follow",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::Blocked(format!(
                "{host}: addresses with passwords in them are not used"
            )));
        }
        let literal = match url.host() {
            Some(Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
            Some(Host::Domain(_)) => None,
            None => return Err(FetchError::Failed("the address has no host".into())),
        };
        if let Some(ip) = literal {
            if !self.policy.permits(ip) {
                return Err(FetchError::Blocked(
                    ResolveError::Blocked { host, address: ip }.to_string(),
                ));
            }
        }
        Ok(())
    }

    async fn read_object(&self, object: &ObjectSource) -> Result<Fetched, FetchError> {
        let bucket = object.bucket.as_deref();
        if let Some(path) = self
            .store
            .local_path(bucket, &object.key)
            .map_err(|err| store_error(&object.key, err))?
        {
            let size = tokio::fs::metadata(&path)
                .await
                .map_err(|err| store_error(&object.key, err.into()))?
                .len();
            if size > self.limits.max_download_bytes {
                return Err(self.too_large());
            }
            return Ok(Fetched::InPlace { path, size });
        }
        let reader = self
            .store
            .get(bucket, &object.key)
            .await
            .map_err(|err| store_error(&object.key, err))?;
        if reader
            .size
            .is_some_and(|len| len > self.limits.max_download_bytes)
        {
            return Err(self.too_large());
        }
        self.spool(read_chunks(reader.body), "the object store")
            .await
    }

    /// Write a byte stream to a temporary file, enforcing the size cap and the
    /// idle timeout whatever the sender claimed.
    async fn spool<S>(&self, body: S, host: &str) -> Result<Fetched, FetchError>
    where
        S: futures::Stream<Item = Result<Bytes, FetchError>>,
    {
        let spool_error = |err: std::io::Error| {
            FetchError::Failed(format!("could not write the download to disk: {err}"))
        };
        let temp = tempfile::NamedTempFile::new_in(&self.spool_dir).map_err(spool_error)?;
        let (file, path) = temp.into_parts();
        // Network chunks are a few KiB; each write to a tokio file is a hop
        // to the blocking pool, so they are gathered into 256 KiB writes.
        let mut file =
            tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file));
        let mut size = 0u64;
        futures::pin_mut!(body);
        loop {
            let next = tokio::time::timeout(self.limits.idle_timeout, body.next())
                .await
                .map_err(|_| FetchError::Timeout {
                    host: host.to_string(),
                })?;
            let Some(chunk) = next else { break };
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > self.limits.max_download_bytes {
                return Err(self.too_large());
            }
            file.write_all(&chunk).await.map_err(spool_error)?;
        }
        file.flush().await.map_err(spool_error)?;
        Ok(Fetched::Spooled { file: path, size })
    }

    fn too_large(&self) -> FetchError {
        FetchError::TooLarge {
            limit_mib: self.limits.max_download_bytes.div_ceil(1 << 20),
        }
    }
}

/// How one download attempt ended badly.
enum Download {
    Failed(FetchError),
    /// The site answered `429`/`503` and asked to be asked again after `after`.
    RetryAfter {
        error: FetchError,
        after: Duration,
    },
}

impl From<FetchError> for Download {
    fn from(err: FetchError) -> Self {
        Self::Failed(err)
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when
        .signed_duration_since(chrono::Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(wait)
}

/// The host a download slot is counted against (any port of it).
fn host_key(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_ascii_lowercase()
}

/// An object's body as a stream of chunks.
fn read_chunks(
    reader: std::pin::Pin<Box<dyn AsyncRead + Send>>,
) -> impl futures::Stream<Item = Result<Bytes, FetchError>> {
    tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024)
        .map(|chunk| chunk.map_err(|err| FetchError::StoreUnavailable(err.to_string())))
}

fn store_error(key: &str, err: StoreError) -> FetchError {
    match err {
        StoreError::NotFound(_) => {
            FetchError::NotFound(format!("there is no stored image called {key}"))
        }
        StoreError::InvalidKey(_) => {
            FetchError::NotFound(format!("{key} is not a valid image key"))
        }
        StoreError::Refused(reason) => FetchError::Failed(format!(
            "the object store would not give us {key}: {reason}"
        )),
        StoreError::Unavailable(reason) => FetchError::StoreUnavailable(reason),
    }
}

fn host_of(raw_url: &str) -> String {
    Url::parse(raw_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "the website".into())
}

/// Turn a reqwest error into the image's error, looking for the guard's verdict.
fn classify(host: &str, err: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(resolve) = cause.downcast_ref::<ResolveError>() {
            return match resolve {
                ResolveError::Blocked { .. } => FetchError::Blocked(resolve.to_string()),
                ResolveError::NotFound { .. } => FetchError::UnknownHost(resolve.to_string()),
            };
        }
        source = cause.source();
    }
    if err.is_timeout() {
        FetchError::Timeout {
            host: host.to_string(),
        }
    } else if err.is_connect() {
        FetchError::Failed(format!("could not connect to {host}"))
    } else {
        FetchError::Failed(format!("the download from {host} broke off"))
    }
}
