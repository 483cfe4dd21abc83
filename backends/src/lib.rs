//! zipfleet's backends on real services, and the one place that turns
//! configuration into backends.
//!
//! # Layout
//!
//! - [`rabbitmq`], [`sqs`]: the brokers; [`s3_store`]: the object store;
//!   [`redis_status`]: the status store.
//! - [`connect`]: `ZIPFLEET_BROKER`, `ZIPFLEET_STORE` and `ZIPFLEET_STATUS`
//!   URLs to `Arc<dyn …>` backends, in one `match` each.
//! - [`telemetry`]: logging set-up and the shutdown signal both binaries use.
//!
//! # Features
//!
//! Each real service is a cargo feature, all on by default: `rabbitmq`,
//! `sqs`, `s3`, `redis`. A build without one still knows its URL scheme and
//! refuses it with [`ConnectError::NotBuiltIn`]; `memory://` and `file://`
//! are always there. The `zipfleet` CLI is built with none of them.

#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "redis")]
pub mod redis_status;
#[cfg(feature = "s3")]
pub mod s3_store;
#[cfg(feature = "sqs")]
pub mod sqs;
pub mod telemetry;

use std::path::PathBuf;
use std::sync::Arc;
use zipfleet_shared::broker::memory::MemoryBroker;
use zipfleet_shared::broker::Broker;
use zipfleet_shared::config::BackendConfig;
use zipfleet_shared::retry::Transient;
use zipfleet_shared::status_store::memory::MemoryStatusStore;
use zipfleet_shared::status_store::StatusStore;
use zipfleet_shared::store::file::FileStore;
use zipfleet_shared::store::ObjectStore;

/// The three backends of one process (defined beside the traits, so code
/// that only receives backends need not depend on this crate).
pub use zipfleet_shared::backends::Backends;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `url` holds only the scheme: the rest may carry credentials.
    #[error("{setting}: unsupported URL scheme {url:?} ({expected})")]
    Unsupported {
        setting: &'static str,
        url: String,
        expected: &'static str,
    },
    /// A known scheme whose backend this binary was compiled without.
    #[error("{setting}: this binary was built without {backend} support (cargo feature `{feature}` of zipfleet-backends); use zipfleet-worker / the API")]
    NotBuiltIn {
        setting: &'static str,
        backend: &'static str,
        feature: &'static str,
    },
    #[error("{setting}: {reason}")]
    Failed {
        setting: &'static str,
        reason: String,
        transient: bool,
    },
}

impl Transient for ConnectError {
    /// Whether the backend was unreachable (worth waiting for) rather than misconfigured.
    fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Failed {
                transient: true,
                ..
            }
        )
    }
}

impl ConnectError {
    fn failed(setting: &'static str, reason: impl std::fmt::Display, transient: bool) -> Self {
        Self::Failed {
            setting,
            reason: reason.to_string(),
            transient,
        }
    }
}

/// A backend behind a cargo feature: its URL schemes, its name, its feature
/// and whether this build has it.
#[derive(Debug, Clone, Copy)]
struct OptionalBackend {
    schemes: &'static [&'static str],
    name: &'static str,
    feature: &'static str,
    built_in: bool,
}

const RABBITMQ: OptionalBackend = OptionalBackend {
    schemes: &["amqp", "amqps"],
    name: "RabbitMQ",
    feature: "rabbitmq",
    built_in: cfg!(feature = "rabbitmq"),
};
const SQS: OptionalBackend = OptionalBackend {
    schemes: &["sqs"],
    name: "SQS",
    feature: "sqs",
    built_in: cfg!(feature = "sqs"),
};
const S3: OptionalBackend = OptionalBackend {
    schemes: &["s3"],
    name: "S3",
    feature: "s3",
    built_in: cfg!(feature = "s3"),
};
const REDIS: OptionalBackend = OptionalBackend {
    schemes: &["redis", "rediss"],
    name: "Redis",
    feature: "redis",
    built_in: cfg!(feature = "redis"),
};

/// The error for `scheme` if it names a backend left out of this build.
fn left_out(
    setting: &'static str,
    scheme: &str,
    backends: &[OptionalBackend],
) -> Result<(), ConnectError> {
    match backends
        .iter()
        .find(|backend| backend.schemes.contains(&scheme))
    {
        Some(backend) if !backend.built_in => Err(ConnectError::NotBuiltIn {
            setting,
            backend: backend.name,
            feature: backend.feature,
        }),
        _ => Ok(()),
    }
}

/// Build every backend the configuration names.
pub async fn connect(config: &BackendConfig) -> Result<Backends, ConnectError> {
    Ok(Backends {
        broker: connect_broker(config).await?,
        store: connect_store(config).await?,
        status: connect_status(config).await?,
    })
}

/// [`connect`], waiting out backends that are unreachable at start (with
/// backoff, logged once) the way a running process waits out an outage.
/// `None` if `stop` is cancelled first; a misconfiguration is an error at once.
pub async fn connect_waiting(
    config: &BackendConfig,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<Option<Backends>, ConnectError> {
    let outage = zipfleet_shared::retry::OutageLog::new("backends");
    let mut backoff = zipfleet_shared::retry::Backoff::default();
    loop {
        let attempt = tokio::select! {
            () = stop.cancelled() => return Ok(None),
            attempt = connect(config) => attempt,
        };
        match attempt {
            Ok(backends) => {
                outage.recovered();
                return Ok(Some(backends));
            }
            Err(err) if err.is_transient() => {
                outage.failed("connecting at start", &err);
                tokio::select! {
                    () = stop.cancelled() => return Ok(None),
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
            Err(err) => return Err(err),
        }
    }
}

/// A token cancelled on SIGTERM or SIGINT.
pub fn stop_on_signal() -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        telemetry::shutdown_signal().await;
        cancel.cancel();
    });
    stop
}

pub async fn connect_broker(config: &BackendConfig) -> Result<Arc<dyn Broker>, ConnectError> {
    let url = config.broker.expose();
    left_out("ZIPFLEET_BROKER", scheme(url), &[RABBITMQ, SQS])?;
    match scheme(url) {
        "memory" => Ok(Arc::new(MemoryBroker::with_lanes(
            config.max_deliveries,
            config.fair_lanes,
        ))),
        #[cfg(feature = "rabbitmq")]
        "amqp" | "amqps" => {
            let options = rabbitmq::RabbitOptions {
                max_deliveries: config.max_deliveries,
                create_queues: config.create_queues,
                lanes: config.fair_lanes,
            };
            let broker = rabbitmq::RabbitBroker::connect(
                url,
                config.queue_names(rabbitmq::default_queue_names()),
                options,
            )
            .await
            .map_err(|err| ConnectError::failed("ZIPFLEET_BROKER", &err, err.is_transient()))?;
            Ok(Arc::new(broker))
        }
        #[cfg(feature = "sqs")]
        "sqs" => {
            let options = sqs::SqsOptions {
                max_deliveries: config.max_deliveries,
                create_queues: config.create_queues,
                visibility_timeout: config.sqs_visibility_timeout,
                lanes: config.fair_lanes,
            };
            let broker =
                sqs::SqsBroker::connect(config.queue_names(sqs::default_queue_names()), options)
                    .await
                    .map_err(|err| {
                        ConnectError::failed("ZIPFLEET_BROKER", &err, err.is_transient())
                    })?;
            Ok(Arc::new(broker))
        }
        _ => Err(ConnectError::Unsupported {
            setting: "ZIPFLEET_BROKER",
            url: format!("{}://…", scheme(url)),
            expected: "amqp://…, sqs:// or memory://",
        }),
    }
}

pub async fn connect_store(config: &BackendConfig) -> Result<Arc<dyn ObjectStore>, ConnectError> {
    let url = config.store.as_str();
    left_out("ZIPFLEET_STORE", scheme(url), &[S3])?;
    match scheme(url) {
        "file" => {
            let store = FileStore::new(file_url_path(url))
                .map_err(|err| ConnectError::failed("ZIPFLEET_STORE", &err, false))?;
            Ok(Arc::new(store))
        }
        #[cfg(feature = "s3")]
        "s3" => {
            let store = s3_store::S3Store::connect(url)
                .await
                .map_err(|err| ConnectError::failed("ZIPFLEET_STORE", &err, err.is_transient()))?;
            Ok(Arc::new(store))
        }
        _ => Err(ConnectError::Unsupported {
            setting: "ZIPFLEET_STORE",
            url: format!("{}://…", scheme(url)),
            expected: "s3://BUCKET/PREFIX or file:///DIR",
        }),
    }
}

pub async fn connect_status(config: &BackendConfig) -> Result<Arc<dyn StatusStore>, ConnectError> {
    let url = config.status.expose();
    left_out("ZIPFLEET_STATUS", scheme(url), &[REDIS])?;
    match scheme(url) {
        "memory" => Ok(Arc::new(MemoryStatusStore::new())),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => {
            let store = redis_status::RedisStatusStore::connect(
                url,
                &config.status_prefix,
                config.status_ttl,
            )
            .await
            .map_err(|err| ConnectError::failed("ZIPFLEET_STATUS", &err, err.is_transient()))?;
            Ok(Arc::new(store))
        }
        _ => Err(ConnectError::Unsupported {
            setting: "ZIPFLEET_STATUS",
            url: format!("{}://…", scheme(url)),
            expected: "redis://… or memory://",
        }),
    }
}

fn scheme(url: &str) -> &str {
    url.split_once("://").map_or("", |(scheme, _)| scheme)
}

/// The directory of a `file://` URL; `file://relative/dir` is taken as relative
/// to the current directory (a convenience the strict URL form lacks).
pub fn file_url_path(url: &str) -> PathBuf {
    let rest = url.strip_prefix("file://").unwrap_or(url);
    PathBuf::from(if rest.is_empty() { "." } else { rest })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_never_echo_credentials() {
        let mut config = BackendConfig::embedded(std::path::Path::new("/tmp"));
        config.status = "postgres://admin:hunter2@db/zipfleet".into();
        let err = connect_status(&config).await.err().expect("unsupported");
        let text = err.to_string();
        assert!(
            text.contains("postgres://") && !text.contains("hunter2"),
            "{text}"
        );
    }

    #[test]
    fn a_backend_left_out_is_named_not_unsupported() {
        let without_rabbitmq = [
            OptionalBackend {
                built_in: false,
                ..RABBITMQ
            },
            SQS,
        ];
        let err = left_out("ZIPFLEET_BROKER", "amqps", &without_rabbitmq).expect_err("left out");
        assert!(
            matches!(
                err,
                ConnectError::NotBuiltIn {
                    backend: "RabbitMQ",
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("built without RabbitMQ support") && text.contains("zipfleet-worker"),
            "{text}"
        );
        assert!(left_out("ZIPFLEET_BROKER", "memory", &without_rabbitmq).is_ok());
        assert!(left_out("ZIPFLEET_BROKER", "redis", &without_rabbitmq).is_ok());
    }

    /// This build refuses the optional backends it lacks (none by default;
    /// `cargo test -p zipfleet-backends --no-default-features` checks them
    /// all). Built-in ones are not connected to: there is no server here.
    #[tokio::test]
    async fn this_build_refuses_the_backends_it_lacks() {
        let base = BackendConfig::embedded(std::path::Path::new("/tmp"));
        let url = |backend: OptionalBackend| format!("{}://user:secret@host/", backend.schemes[0]);
        for backend in [RABBITMQ, SQS, S3, REDIS] {
            if backend.built_in {
                continue;
            }
            let mut config = base.clone();
            let err = match backend.feature {
                "rabbitmq" | "sqs" => {
                    config.broker = url(backend).into();
                    connect_broker(&config).await.err()
                }
                "s3" => {
                    config.store = url(backend);
                    connect_store(&config).await.err()
                }
                _ => {
                    config.status = url(backend).into();
                    connect_status(&config).await.err()
                }
            }
            .expect("refused");
            assert!(
                matches!(err, ConnectError::NotBuiltIn { .. })
                    && !err.to_string().contains("secret"),
                "{}: {err}",
                backend.name
            );
        }
    }

    #[test]
    fn file_urls() {
        assert_eq!(
            file_url_path("file:///var/lib/zipfleet"),
            PathBuf::from("/var/lib/zipfleet")
        );
        assert_eq!(file_url_path("file://examples"), PathBuf::from("examples"));
    }
}
