//! Every setting in one place. Each is an environment variable and also a
//! command-line flag (clap's `env`), grouped so each binary flattens the groups
//! it needs: [`BackendConfig`] (broker, store, status), [`SourcePolicy`] (which
//! networks URL images may come from), [`Limits`] (sizes and times),
//! [`WorkerTuning`] (concurrency and memory budget).

use crate::broker::QueueNames;
use crate::secret::SecretUrl;
use clap::ArgAction;
use ipnet::IpNet;
use std::path::PathBuf;
use std::time::Duration;

/// Where jobs, zips and statuses live.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendConfig {
    /// Job queue: `amqp://…` (RabbitMQ), `sqs://` (AWS SQS), `memory://` (in-process).
    #[arg(
        long,
        env = "ZIPFLEET_BROKER",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub broker: SecretUrl,
    /// Jobs queue name (SQS: name or URL). Default depends on the broker.
    #[arg(long, env = "ZIPFLEET_JOBS_QUEUE")]
    pub jobs_queue: Option<String>,
    /// Completed queue name (SQS: name or URL).
    #[arg(long, env = "ZIPFLEET_COMPLETED_QUEUE")]
    pub completed_queue: Option<String>,
    /// Dead-letter queue name (SQS: name or URL).
    #[arg(long, env = "ZIPFLEET_DEAD_LETTER_QUEUE")]
    pub dead_letter_queue: Option<String>,
    /// Declare/create missing queues (with the dead-letter wiring) at start.
    #[arg(long, env = "ZIPFLEET_CREATE_QUEUES", default_value_t = true, action = ArgAction::Set)]
    pub create_queues: bool,
    /// Deliveries of one job before it is dead-lettered.
    #[arg(long, env = "ZIPFLEET_MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: u32,
    /// SQS: how long a received job stays invisible to other workers between
    /// heartbeats (the worker renews it every third of this while the job runs).
    #[arg(long, env = "ZIPFLEET_SQS_VISIBILITY_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub sqs_visibility_timeout: Duration,
    /// Lanes of the jobs queue (fair share): lane 0 is the jobs queue, lane n its `.laneN` (SQS `-laneN`) queue.
    #[arg(long, env = "ZIPFLEET_FAIR_LANES", default_value_t = crate::broker::DEFAULT_LANES, value_parser = clap::value_parser!(u16).range(1..=i64::from(crate::broker::MAX_LANES)))]
    pub fair_lanes: u16,
    /// Object store: `s3://BUCKET/PREFIX` or `file:///DIR`.
    #[arg(
        long,
        env = "ZIPFLEET_STORE",
        default_value = "file:///var/lib/zipfleet"
    )]
    pub store: String,
    /// Status store: `redis://HOST:PORT/DB` or `memory://`.
    #[arg(
        long,
        env = "ZIPFLEET_STATUS",
        default_value = "redis://127.0.0.1:6379/0"
    )]
    pub status: SecretUrl,
    /// Prefix of every key the status store writes in Redis, so that
    /// several deployments (or test fleets) can share one Redis.
    #[arg(long, env = "ZIPFLEET_STATUS_PREFIX", default_value = "zipfleet", value_parser = parse_key_prefix)]
    pub status_prefix: String,
    /// How long status documents are kept (e.g. `3d`, `12h`).
    #[arg(long, env = "ZIPFLEET_STATUS_TTL", default_value = "3d", value_parser = parse_duration)]
    pub status_ttl: Duration,
    /// How long a download URL of a zip stays valid.
    #[arg(long, env = "ZIPFLEET_DOWNLOAD_URL_EXPIRY", default_value = "1h", value_parser = parse_duration)]
    pub download_url_expiry: Duration,
    /// Specs larger than this travel by claim check (`PREFIX/specs/JOB_ID.json`).
    #[arg(long, env = "ZIPFLEET_CLAIM_CHECK_BYTES", default_value = "128KiB", value_parser = parse_bytes)]
    pub claim_check_bytes: u64,
}

impl BackendConfig {
    /// The embedded default: in-process queue, in-memory status, a directory
    /// store; every other setting at its default.
    pub fn embedded(store_dir: &std::path::Path) -> Self {
        Self {
            broker: "memory://".into(),
            store: format!("file://{}", store_dir.display()),
            status: "memory://".into(),
            ..defaults_of()
        }
    }

    /// Queue names: the ones configured, else the broker's own `defaults`
    /// (each broker module knows its naming convention).
    pub fn queue_names(&self, defaults: QueueNames) -> QueueNames {
        QueueNames {
            jobs: self.jobs_queue.clone().unwrap_or(defaults.jobs),
            completed: self.completed_queue.clone().unwrap_or(defaults.completed),
            dead_letter: self
                .dead_letter_queue
                .clone()
                .unwrap_or(defaults.dead_letter),
        }
    }

    /// The environment variables that configure another process (a worker
    /// or API the tests or the bench spawn) exactly like this.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("ZIPFLEET_BROKER", self.broker.expose().to_string()),
            ("ZIPFLEET_CREATE_QUEUES", self.create_queues.to_string()),
            ("ZIPFLEET_MAX_DELIVERIES", self.max_deliveries.to_string()),
            ("ZIPFLEET_FAIR_LANES", self.fair_lanes.to_string()),
            (
                "ZIPFLEET_SQS_VISIBILITY_TIMEOUT",
                format_duration(self.sqs_visibility_timeout),
            ),
            ("ZIPFLEET_STORE", self.store.clone()),
            ("ZIPFLEET_STATUS", self.status.expose().to_string()),
            ("ZIPFLEET_STATUS_PREFIX", self.status_prefix.clone()),
            ("ZIPFLEET_STATUS_TTL", format_duration(self.status_ttl)),
            (
                "ZIPFLEET_DOWNLOAD_URL_EXPIRY",
                format_duration(self.download_url_expiry),
            ),
            (
                "ZIPFLEET_CLAIM_CHECK_BYTES",
                self.claim_check_bytes.to_string(),
            ),
        ];
        for (name, queue) in [
            ("ZIPFLEET_JOBS_QUEUE", &self.jobs_queue),
            ("ZIPFLEET_COMPLETED_QUEUE", &self.completed_queue),
            ("ZIPFLEET_DEAD_LETTER_QUEUE", &self.dead_letter_queue),
        ] {
            if let Some(queue) = queue {
                env.push((name, queue.clone()));
            }
        }
        env
    }
}

/// A settings group with every field at its clap default, ignoring the
/// environment: the one place defaults are written is the `default_value`
/// of each flag, and `Default` impls come from here.
pub fn defaults_of<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("zipfleet-defaults"))
        .mut_args(|arg| arg.env(None::<&str>));
    let matches = command
        .try_get_matches_from(["zipfleet-defaults"])
        .expect("every setting has a default");
    T::from_arg_matches(&matches).expect("defaults parse")
}

/// A duration as [`parse_duration`] reads it back (`1h 30m`, `1s 500ms`).
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// What the API enforces per tenant and per erased job (contract, "Fair
/// share" and "Erasure and retention").
#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiPolicy {
    /// Jobs one tenant may have queued at once; a tenant over it gets `429`.
    #[arg(long, env = "ZIPFLEET_MAX_QUEUED_PER_TENANT", default_value_t = 1000)]
    pub max_queued_per_tenant: u32,
    /// How long an erased job's id stays marked erased, so no late worker brings its data back.
    #[arg(long, env = "ZIPFLEET_ERASURE_TOMBSTONE_TTL", default_value = "7d", value_parser = parse_duration)]
    pub erasure_tombstone_ttl: Duration,
}

impl Default for ApiPolicy {
    fn default() -> Self {
        defaults_of()
    }
}

/// Which networks URL images may come from. The default is public addresses only.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SourcePolicy {
    /// Let URL images come from any loopback/private/link-local address (tests, on-prem).
    #[arg(long, env = "ZIPFLEET_ALLOW_PRIVATE_SOURCES", default_value_t = false, action = ArgAction::Set)]
    pub allow_private_sources: bool,
    /// Open only these non-public networks, e.g. `127.0.0.1/32,10.1.0.0/16`.
    #[arg(long, env = "ZIPFLEET_ALLOWED_SOURCE_NETS", value_delimiter = ',')]
    pub allowed_source_nets: Vec<IpNet>,
}

/// Sizes and times that keep one image or one job from hurting the worker.
#[derive(clap::Args, Debug, Clone)]
pub struct Limits {
    /// Largest image download.
    #[arg(long, env = "ZIPFLEET_MAX_DOWNLOAD_BYTES", default_value = "50MiB", value_parser = parse_bytes)]
    pub max_download_bytes: u64,
    /// Time to open a connection.
    #[arg(long, env = "ZIPFLEET_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Time for a whole download, redirects included.
    #[arg(long, env = "ZIPFLEET_DOWNLOAD_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub download_timeout: Duration,
    /// Longest wait for the next bytes of a download.
    #[arg(long, env = "ZIPFLEET_IDLE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Redirects followed per download, each re-checked.
    #[arg(long, env = "ZIPFLEET_MAX_REDIRECTS", default_value_t = 5)]
    pub max_redirects: u32,
    /// Most pixels (width × height) an image may have. 120 MP lets every
    /// phone camera's photos through (50 MP common, 108 MP the largest) and
    /// refuses decompression bombs; memory is guarded separately by the budget.
    #[arg(long, env = "ZIPFLEET_MAX_PIXELS", default_value_t = 120_000_000)]
    pub max_pixels: u64,
    /// Most images in one job.
    #[arg(long, env = "ZIPFLEET_MAX_IMAGES", default_value_t = 10_000)]
    pub max_images: usize,
    /// Largest zip a job may produce.
    #[arg(long, env = "ZIPFLEET_MAX_ZIP_BYTES", default_value = "4GiB", value_parser = parse_bytes)]
    pub max_zip_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        defaults_of()
    }
}

/// How much one worker does at once.
#[derive(clap::Args, Debug, Clone)]
pub struct WorkerTuning {
    /// Jobs one worker runs at once (also its prefetch).
    #[arg(long, env = "ZIPFLEET_CONCURRENCY", default_value_t = 2)]
    pub concurrency: u16,
    /// Threads decoding and resizing; 0 = one per core.
    #[arg(long, env = "ZIPFLEET_CPU_THREADS", default_value_t = 0)]
    pub cpu_threads: usize,
    /// Downloads in flight per job.
    #[arg(long, env = "ZIPFLEET_FETCH_CONCURRENCY", default_value_t = 16)]
    pub fetch_concurrency: usize,
    /// The worker's memory budget (peak RSS target), e.g. `256MiB`.
    #[arg(long, env = "ZIPFLEET_MEMORY_BUDGET", default_value = "256MiB", value_parser = parse_bytes)]
    pub memory_budget: u64,
    /// Where downloads and zips are spooled while a job runs (default: the system temp dir).
    #[arg(long, env = "ZIPFLEET_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// On SIGTERM, how long running jobs may take to finish before they are handed back.
    #[arg(long, env = "ZIPFLEET_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// The worker's own HTTP address for `/healthz`, `/readyz` and `/metrics`; `off` serves none.
    #[arg(long, env = "ZIPFLEET_WORKER_LISTEN", default_value = "127.0.0.1:9090")]
    pub worker_listen: String,
    /// `/healthz` fails once the job loop has not turned for this long (it turns at least every few seconds).
    #[arg(long, env = "ZIPFLEET_LIVENESS_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub liveness_timeout: Duration,
    /// Courtesy to image sources: downloads at once from one web host, per worker.
    #[arg(long, env = "ZIPFLEET_PER_HOST_CONCURRENCY", default_value_t = 4)]
    pub per_host_concurrency: usize,
    /// Reusing work across jobs.
    #[command(flatten)]
    pub cache: CacheSettings,
}

impl Default for WorkerTuning {
    fn default() -> Self {
        defaults_of()
    }
}

/// The cache (contract, "Cache"): what is reused across jobs and for how long.
#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Reuse rendered images, downloads and known failures across jobs (`on` or `off`).
    #[arg(long = "cache", env = "ZIPFLEET_CACHE", default_value = "on", value_parser = parse_on_off, action = ArgAction::Set)]
    pub enabled: bool,
    /// Entries older than this are never used (rendered images, and every other kind).
    #[arg(long, env = "ZIPFLEET_CACHE_TTL", default_value = "7d", value_parser = parse_duration)]
    pub cache_ttl: Duration,
    /// How long a downloaded web image is reused for the same URL.
    #[arg(long, env = "ZIPFLEET_SOURCE_CACHE_TTL", default_value = "24h", value_parser = parse_duration)]
    pub source_cache_ttl: Duration,
    /// How long a URL whose site refused it (4xx, not an image) gives the same failure without a request.
    #[arg(long, env = "ZIPFLEET_FAILURE_CACHE_TTL", default_value = "10m", value_parser = parse_duration)]
    pub failure_cache_ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        defaults_of()
    }
}

/// A Redis key prefix: 1 to 64 of `A-Z a-z 0-9 _ - .`.
pub fn parse_key_prefix(text: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not a key prefix (1 to 64 of A-Z a-z 0-9 _ - .)"
        ))
    }
}

/// `on`/`off` (also `true`/`false`, `1`/`0`).
pub fn parse_on_off(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        other => Err(format!("{other:?} is neither on nor off")),
    }
}

/// How the binaries write their logs.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogSettings {
    /// `text` or `json` (one JSON object a line). Default: `text` on a terminal, else `json`.
    #[arg(long, env = "ZIPFLEET_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The two log formats.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

pub const MIB: u64 = 1024 * 1024;

/// `"50MiB"`, `"2GiB"`, `"512KiB"`, `"1MB"` or plain bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 256MiB"))?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1024,
        "m" | "mb" => 1_000_000,
        "mib" => MIB,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1024 * MIB,
        other => return Err(format!("unknown size unit {other:?} in {text:?}")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// `"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"3d"` (or any `humantime` span,
/// e.g. `"1h 30m"`), or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text)
        .map_err(|err| format!("{text:?} is not a duration like 30s ({err})"))
}

/// Thresholds of the dataset report (contract, "Dataset report").
#[derive(clap::Args, Debug, Clone, Copy, PartialEq)]
pub struct ReportSettings {
    /// A label with fewer images than this gets a `too_few_images` warning (0: never).
    #[arg(long, env = "ZIPFLEET_MIN_IMAGES_PER_LABEL", default_value_t = 5)]
    pub min_images_per_label: u32,
    /// `imbalanced_labels` when the largest label has more than this many
    /// times the images of the smallest (0: never; below 1 counts as 1).
    #[arg(long, env = "ZIPFLEET_MAX_LABEL_RATIO", default_value_t = 3.0)]
    pub max_label_ratio: f64,
}

impl Default for ReportSettings {
    fn default() -> Self {
        defaults_of()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("256MiB").unwrap(), 256 * MIB);
        assert_eq!(parse_bytes("50 MiB").unwrap(), 50 * MIB);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert_eq!(parse_bytes("4GiB").unwrap(), 4096 * MIB);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3d").unwrap(), Duration::from_secs(259_200));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration(" 10m ").unwrap(), Duration::from_secs(600));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5s").is_err());
        for duration in [
            Duration::from_millis(1500),
            Duration::from_secs(259_200),
            Duration::ZERO,
        ] {
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
    }

    #[test]
    fn cache_defaults_agree_with_clap() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            cache: CacheSettings,
        }
        use clap::Parser;
        let parsed = Cli::try_parse_from(["x"]).unwrap().cache;
        assert_eq!(parsed, CacheSettings::default());
        assert_eq!(parsed.source_cache_ttl, Duration::from_secs(86_400));
        let off = Cli::try_parse_from(["x", "--cache", "off", "--failure-cache-ttl", "1s"])
            .unwrap()
            .cache;
        assert!(!off.enabled);
        assert_eq!(off.failure_cache_ttl, Duration::from_secs(1));
    }

    #[test]
    fn configured_queue_names_override_the_brokers_defaults() {
        let defaults = QueueNames {
            jobs: "j".into(),
            completed: "c".into(),
            dead_letter: "d".into(),
        };
        let mut config = BackendConfig::embedded(std::path::Path::new("/tmp"));
        assert_eq!(config.queue_names(defaults.clone()), defaults);
        config.jobs_queue = Some("custom".into());
        assert_eq!(config.queue_names(defaults).jobs, "custom");
    }

    #[test]
    fn defaults_ignore_the_environment_and_round_trip_through_it() {
        // SAFETY of the test: no other test of this crate reads this variable.
        std::env::set_var("ZIPFLEET_MAX_PIXELS", "7");
        assert_eq!(Limits::default().max_pixels, 120_000_000);
        std::env::remove_var("ZIPFLEET_MAX_PIXELS");
        assert_eq!(
            WorkerTuning::default().shutdown_grace,
            Duration::from_secs(30)
        );

        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            backend: BackendConfig,
        }
        use clap::Parser;
        let mut config = BackendConfig::embedded(std::path::Path::new("/srv/z"));
        config.jobs_queue = Some("jobs-x".into());
        config.sqs_visibility_timeout = Duration::from_millis(1500);
        let mut args = vec!["x".to_string()];
        for (name, value) in config.to_env() {
            let flag = name
                .trim_start_matches("ZIPFLEET_")
                .to_lowercase()
                .replace('_', "-");
            args.push(format!("--{flag}={value}"));
        }
        let back = Cli::try_parse_from(args).unwrap().backend;
        assert_eq!(format!("{back:?}"), format!("{config:?}"));
    }
}
