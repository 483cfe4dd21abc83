//! Job status in Redis (`ZIPFLEET_STATUS=redis://HOST:PORT/DB`), with the
//! fair-share ledger, tombstones, search indexes and worker registry that
//! hang off it. Every transition is one Lua script ([`scripts`]) that checks
//! the job's state (and tombstone) first, so a late `running` never
//! overwrites a final state, the first final state wins, an erased job is
//! never written again, and the ledger and indexes always move with the
//! status. Every write renews the job's time to live.
//!
//! - [`records`]: a job's life ([`JobRecords`]);
//! - [`ledger`]: fair share ([`FairLedger`]);
//! - [`erasure`]: tombstones and forgetting ([`Erasure`]);
//! - [`index`]: search and project listing ([`JobIndex`]);
//! - [`fleet`]: the workers' heartbeats ([`FleetRegistry`]).
//!
//! [`JobRecords`]: zipfleet_shared::status_store::JobRecords
//! [`FairLedger`]: zipfleet_shared::status_store::FairLedger
//! [`Erasure`]: zipfleet_shared::status_store::Erasure
//! [`JobIndex`]: zipfleet_shared::status_store::JobIndex
//! [`FleetRegistry`]: zipfleet_shared::status_store::FleetRegistry

mod erasure;
mod fleet;
mod index;
mod ledger;
mod records;
mod scripts;

use redis::aio::ConnectionManager;
use redis::Script;
use std::time::Duration;
use zipfleet_shared::status::JobStatus;
use zipfleet_shared::status_store::search::IndexKey;
use zipfleet_shared::status_store::StatusError;

/// The status store on one Redis.
pub struct RedisStatusStore {
    connection: ConnectionManager,
    /// `ZIPFLEET_STATUS_PREFIX` (checked to be a safe key part).
    prefix: String,
    ttl_seconds: u64,
    scripts: Scripts,
}

/// Every script, loaded once (`EVALSHA` after the first call).
struct Scripts {
    create: Script,
    mark_published: Script,
    begin: Script,
    progress: Script,
    finish: Script,
    cancel: Script,
    renew: Script,
    hand_back: Script,
    loads: Script,
    dispatch: Script,
    release: Script,
    work_waiting: Script,
    rank: Script,
    erase: Script,
    forget: Script,
    search: Script,
    recent: Script,
}

impl Scripts {
    fn new(prefix: &str) -> Self {
        let prelude = scripts::PRELUDE.replace("PREFIX", prefix).replace(
            "CLAIM_FOR_MS",
            &zipfleet_shared::status_store::fair::CLAIM_FOR
                .as_millis()
                .to_string(),
        );
        let script = |body: &str| Script::new(&format!("{prelude}{body}"));
        Self {
            create: script(scripts::CREATE),
            mark_published: script(scripts::MARK_PUBLISHED),
            begin: script(scripts::BEGIN),
            progress: script(scripts::PROGRESS),
            finish: script(scripts::FINISH),
            cancel: script(scripts::CANCEL),
            renew: script(scripts::RENEW),
            hand_back: script(scripts::HAND_BACK),
            loads: script(scripts::LOADS),
            dispatch: script(scripts::DISPATCH),
            release: script(scripts::RELEASE),
            work_waiting: script(scripts::WORK_WAITING),
            rank: script(scripts::RANK),
            erase: script(scripts::ERASE),
            forget: script(scripts::FORGET),
            search: script(scripts::SEARCH),
            recent: script(scripts::RECENT),
        }
    }
}

impl RedisStatusStore {
    fn job_key(&self, job_id: &str) -> String {
        format!("{}:job:{job_id}", self.prefix)
    }

    fn tombstone_key(&self, job_id: &str) -> String {
        format!("{}:erased:{job_id}", self.prefix)
    }

    fn contents_key(&self, job_id: &str) -> String {
        format!("{}:job:{job_id}:contents", self.prefix)
    }

    /// The fleet-wide counters behind `/metrics`: `entered:STATE`, and for
    /// the `job` and `image` histograms `NAME:bN` (bucket N), `NAME:sum_ms`,
    /// `NAME:count`.
    fn stats_key(&self) -> String {
        format!("{}:stats", self.prefix)
    }

    /// Recent run times (ms), newest first.
    fn runs_key(&self) -> String {
        format!("{}:fair:runs", self.prefix)
    }

    /// Worker id → its last heartbeat (JSON).
    fn workers_key(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// One of the search indexes.
    fn index_key(&self, index: &IndexKey<'_>) -> String {
        match index {
            IndexKey::All => format!("{}:index:all", self.prefix),
            IndexKey::Project(project) => format!("{}:index:project:{project}", self.prefix),
            IndexKey::Tenant(tenant) => format!("{}:index:tenant:{tenant}", self.prefix),
            IndexKey::State(state) => format!("{}:index:state:{}", self.prefix, state.as_str()),
        }
    }
}

fn unavailable(err: redis::RedisError) -> StatusError {
    StatusError::Unavailable(err.to_string())
}

impl RedisStatusStore {
    /// `prefix`: `ZIPFLEET_STATUS_PREFIX` (it goes into the scripts, so it is
    /// checked again here).
    pub async fn connect(url: &str, prefix: &str, ttl: Duration) -> Result<Self, StatusError> {
        let prefix =
            zipfleet_shared::config::parse_key_prefix(prefix).map_err(StatusError::Invalid)?;
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(5))
            .set_number_of_retries(3);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            connection,
            scripts: Scripts::new(&prefix),
            prefix,
            ttl_seconds: ttl.as_secs().max(60),
        })
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// How long index entries are kept: as long as statuses live.
    fn keep_ms(&self) -> u64 {
        self.ttl_seconds * 1000
    }

    fn parse(job_id: &str, doc: &str) -> Result<JobStatus, StatusError> {
        serde_json::from_str(doc).map_err(|err| StatusError::Corrupt {
            job_id: job_id.to_string(),
            reason: err.to_string(),
        })
    }

    fn encode(status: &JobStatus) -> String {
        serde_json::to_string(status).expect("a status always serializes")
    }
}

/// A script's reply of strings: its first word says which case.
fn reply_word(reply: &[String]) -> &str {
    reply.first().map_or("", String::as_str)
}

fn field(reply: &[String], index: usize) -> &str {
    reply.get(index).map_or("", String::as_str)
}

fn number<T: std::str::FromStr + Default>(text: &str) -> T {
    text.parse().unwrap_or_default()
}
