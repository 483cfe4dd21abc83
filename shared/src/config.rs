//! Every setting in one place. Each is an environment variable and also a
//! command-line flag (clap's `env`), grouped so each binary flattens the groups
//! it needs: [`BackendConfig`] (broker, store, status), [`SourcePolicy`] (which
//! networks URL images may come from), [`Limits`] (sizes and times),
//! [`WorkerTuning`] (concurrency and memory budget).

use crate::broker::QueueNames;
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
    pub broker: String,
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
    pub status: String,
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
    /// The embedded default: in-process queue, in-memory status, a directory store.
    pub fn embedded(store_dir: &std::path::Path) -> Self {
        Self {
            broker: "memory://".into(),
            jobs_queue: None,
            completed_queue: None,
            dead_letter_queue: None,
            create_queues: true,
            max_deliveries: 5,
            sqs_visibility_timeout: Duration::from_secs(60),
            store: format!("file://{}", store_dir.display()),
            status: "memory://".into(),
            status_ttl: Duration::from_secs(3 * 86_400),
            download_url_expiry: Duration::from_secs(3600),
            claim_check_bytes: 128 * 1024,
        }
    }

    /// Queue names, with each broker's own defaults.
    pub fn queue_names(&self) -> QueueNames {
        let (jobs, completed, dead_letter) = if self.broker.starts_with("sqs:") {
            ("zipfleet-jobs", "zipfleet-completed", "zipfleet-jobs-dlq")
        } else {
            ("zipfleet.jobs", "zipfleet.completed", "zipfleet.jobs.dlq")
        };
        QueueNames {
            jobs: self.jobs_queue.clone().unwrap_or_else(|| jobs.into()),
            completed: self
                .completed_queue
                .clone()
                .unwrap_or_else(|| completed.into()),
            dead_letter: self
                .dead_letter_queue
                .clone()
                .unwrap_or_else(|| dead_letter.into()),
        }
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
        Self {
            max_download_bytes: 50 * MIB,
            connect_timeout: Duration::from_secs(5),
            download_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(10),
            max_redirects: 5,
            max_pixels: 120_000_000,
            max_images: 10_000,
            max_zip_bytes: 4 * 1024 * MIB,
        }
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
    /// Reusing work across jobs, and courtesy to image sources.
    #[command(flatten)]
    pub cache: CacheSettings,
}

impl Default for WorkerTuning {
    fn default() -> Self {
        Self {
            concurrency: 2,
            cpu_threads: 0,
            fetch_concurrency: 16,
            memory_budget: 256 * MIB,
            work_dir: None,
            shutdown_grace: Duration::from_secs(30),
            worker_listen: "off".into(),
            liveness_timeout: Duration::from_secs(60),
            cache: CacheSettings::DEFAULT,
        }
    }
}

/// The cache (contract, "Cache"): what is reused across jobs and for how
/// long, and how many downloads one host gets at once.
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
    /// How long a URL that failed (4xx, blocked, not an image) gives the same failure without a request.
    #[arg(long, env = "ZIPFLEET_FAILURE_CACHE_TTL", default_value = "10m", value_parser = parse_duration)]
    pub failure_cache_ttl: Duration,
    /// Downloads at once from one web host, per worker.
    #[arg(long, env = "ZIPFLEET_PER_HOST_CONCURRENCY", default_value_t = CacheSettings::DEFAULT.per_host_concurrency)]
    pub per_host_concurrency: usize,
}

impl CacheSettings {
    /// The defaults, for [`Default`] (clap's `default_value`s above say the same).
    pub const DEFAULT: Self = Self {
        enabled: true,
        cache_ttl: Duration::from_secs(7 * 86_400),
        source_cache_ttl: Duration::from_secs(86_400),
        failure_cache_ttl: Duration::from_secs(600),
        per_host_concurrency: 4,
    };
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self::DEFAULT
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

/// `"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"3d"`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s"))?;
    let millis = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => return Err(format!("unknown duration unit {other:?} in {text:?}")),
    };
    Ok(Duration::from_millis(number.saturating_mul(millis)))
}

/// Thresholds of the dataset report (contract, "Dataset report").
#[derive(clap::Args, Debug, Clone, Copy, PartialEq)]
pub struct ReportSettings {
    /// A label with fewer images than this gets a `too_few_images` warning (0: never).
    #[arg(long, env = "ZIPFLEET_MIN_IMAGES_PER_LABEL", default_value_t = ReportSettings::DEFAULT.min_images_per_label)]
    pub min_images_per_label: u32,
    /// `imbalanced_labels` when the largest label has more than this many
    /// times the images of the smallest (0: never; below 1 counts as 1).
    #[arg(long, env = "ZIPFLEET_MAX_LABEL_RATIO", default_value_t = ReportSettings::DEFAULT.max_label_ratio)]
    pub max_label_ratio: f64,
}

impl ReportSettings {
    /// The defaults, for clap and [`Default`] alike.
    pub const DEFAULT: Self = Self {
        min_images_per_label: 5,
        max_label_ratio: 3.0,
    };
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self::DEFAULT
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
        assert!(parse_duration("soon").is_err());
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
        assert_eq!(parsed, CacheSettings::DEFAULT);
        let off = Cli::try_parse_from(["x", "--cache", "off", "--failure-cache-ttl", "1s"])
            .unwrap()
            .cache;
        assert!(!off.enabled);
        assert_eq!(off.failure_cache_ttl, Duration::from_secs(1));
    }

    #[test]
    fn queue_name_defaults_depend_on_the_broker() {
        let mut config = BackendConfig::embedded(std::path::Path::new("/tmp"));
        assert_eq!(config.queue_names().dead_letter, "zipfleet.jobs.dlq");
        config.broker = "sqs://".into();
        assert_eq!(config.queue_names().jobs, "zipfleet-jobs");
        config.jobs_queue = Some("custom".into());
        assert_eq!(config.queue_names().jobs, "custom");
    }
}
