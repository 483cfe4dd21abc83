//! The in-memory status store (`memory://`): the embedded default, and the
//! reference the Redis store is held to. One mutex over everything, so every
//! transition updates the status, the fair-share ledger and the tombstones
//! in one step, as the Redis store's scripts do.

use super::fair::{self, FairLimits, Pace, TenantLoad, RECENT_RUNS};
use super::search::{Cursor, IndexKey, JobPage, JobQuery, JobSummary};
use super::RUNNING_LEASE;
use super::{
    job_seconds, run_seconds, BeginJob, BeginOutcome, CancelOutcome, CreateOutcome, DispatchOrder,
    ErasedJob, Erasure, FairLedger, FinishOutcome, FleetRegistry, Histogram, JobIndex, JobRecords,
    JobSignal, NewJob, RecentCounts, Stats, StatusError, WorkerBeat, WorkerSeen,
    IMAGE_SECONDS_BOUNDS, JOB_SECONDS_BOUNDS, WORKER_SEEN_FOR,
};
use crate::status::{now, JobState, JobStatus, QueuePlace};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Record {
    status: JobStatus,
    fingerprint: String,
    published: bool,
    cancel_requested: bool,
    /// The lane its message is on (while it waits).
    lane: u16,
    pictures: Vec<String>,
    contents: BTreeSet<String>,
    /// When it entered its current state (the state index's order).
    entered: DateTime<Utc>,
}

impl Record {
    /// A job first seen by a worker (posted straight to the broker): no
    /// fingerprint to compare re-posts with, published already, lane 0.
    fn adopted(status: JobStatus) -> Self {
        Self {
            entered: status.created_at,
            status,
            fingerprint: String::new(),
            published: true,
            cancel_requested: false,
            lane: 0,
            pictures: Vec::new(),
            contents: BTreeSet::new(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<String, Record>,
    tombstones: HashMap<String, Instant>,
    /// Per tenant: its queued jobs in acceptance order (ms, id).
    waiting: HashMap<String, BTreeSet<(i64, String)>>,
    /// Per tenant: its running jobs and when each lease lapses.
    running: HashMap<String, HashMap<String, Instant>>,
    /// The lane each tenant with queued jobs was given.
    lane_of: HashMap<String, u16>,
    /// Per tenant: slots claimed by dispatch decisions, until when.
    claims: HashMap<String, HashMap<String, Instant>>,
    /// Per tenant: when its last job started (ms), for its turn.
    served: HashMap<String, i64>,
    runs: VecDeque<f64>,
    workers: HashMap<String, WorkerEntry>,
    entered: HashMap<JobState, u64>,
    job_seconds: Histogram,
    image_seconds: Histogram,
}

#[derive(Debug)]
struct WorkerEntry {
    beat: WorkerBeat,
    seen: DateTime<Utc>,
    images_per_second: f64,
}

#[derive(Debug, Default)]
pub struct MemoryStatusStore {
    inner: Mutex<Inner>,
}

impl MemoryStatusStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("status store lock")
    }
}

impl Inner {
    fn erased(&self, job_id: &str) -> bool {
        self.tombstones
            .get(job_id)
            .is_some_and(|until| *until > Instant::now())
    }

    fn enter(&mut self, job_id: &str, state: JobState) {
        *self.entered.entry(state).or_default() += 1;
        if let Some(record) = self.records.get_mut(job_id) {
            record.entered = now();
        }
    }

    /// Take a job off the ledger (queued or running), releasing its
    /// tenant's lane once nothing of it waits.
    fn unledger(&mut self, job_id: &str, tenant: &str) {
        if let Some(queue) = self.waiting.get_mut(tenant) {
            queue.retain(|(_, id)| id != job_id);
            if queue.is_empty() {
                self.waiting.remove(tenant);
                self.lane_of.remove(tenant);
            }
        }
        if let Some(running) = self.running.get_mut(tenant) {
            running.remove(job_id);
            if running.is_empty() {
                self.running.remove(tenant);
            }
        }
        if !self.waiting.contains_key(tenant) && !self.running.contains_key(tenant) {
            self.served.remove(tenant);
        }
    }

    fn settle(&mut self, claim: &super::Claim) {
        if let Some(claims) = self.claims.get_mut(&claim.tenant) {
            claims.remove(&claim.id);
            if claims.is_empty() {
                self.claims.remove(&claim.tenant);
            }
        }
    }

    fn wait_in_line(&mut self, job_id: &str, tenant: &str, since: DateTime<Utc>) {
        self.waiting
            .entry(tenant.to_string())
            .or_default()
            .insert((since.timestamp_millis(), job_id.to_string()));
    }

    fn loads(&mut self) -> Vec<TenantLoad> {
        let now_instant = Instant::now();
        for running in self.running.values_mut() {
            running.retain(|_, lease| *lease > now_instant);
        }
        self.running.retain(|_, running| !running.is_empty());
        for claims in self.claims.values_mut() {
            claims.retain(|_, until| *until > now_instant);
        }
        self.claims.retain(|_, claims| !claims.is_empty());
        let mut tenants: BTreeSet<&String> = self.waiting.keys().collect();
        tenants.extend(self.running.keys());
        let now_ms = now().timestamp_millis();
        let age = |since: i64| Duration::from_millis(now_ms.saturating_sub(since).max(0) as u64);
        tenants
            .into_iter()
            .map(|tenant| {
                let queue = self.waiting.get(tenant);
                let oldest = queue.and_then(|queue| queue.first());
                let in_flight = self.running.get(tenant).map_or(0, HashMap::len)
                    + self.claims.get(tenant).map_or(0, HashMap::len);
                let turn_since = oldest
                    .map(|(since, _)| *since)
                    .max(self.served.get(tenant).copied());
                TenantLoad {
                    tenant: tenant.clone(),
                    queued: queue.map_or(0, |queue| queue.len() as u32),
                    running: in_flight as u32,
                    oldest_wait: oldest.map_or(Duration::ZERO, |(since, _)| age(*since)),
                    turn_wait: turn_since.map_or(Duration::ZERO, age),
                    oldest_lane: oldest
                        .and_then(|(_, id)| self.records.get(id))
                        .map(|record| record.lane),
                }
            })
            .collect()
    }

    fn pace(&self) -> Pace {
        let cutoff = now() - chrono::Duration::from_std(WORKER_SEEN_FOR).unwrap_or_default();
        let slots = self
            .workers
            .values()
            .filter(|worker| worker.seen >= cutoff)
            .map(|worker| worker.beat.slots)
            .sum();
        Pace::from_runs(self.runs.iter().copied().collect(), slots)
    }
}

#[async_trait]
impl JobRecords for MemoryStatusStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn create(&self, job: &NewJob<'_>) -> Result<CreateOutcome, StatusError> {
        let mut inner = self.lock();
        let status = job.status;
        if inner.erased(&status.job_id) {
            return Ok(CreateOutcome::Erased);
        }
        if let Some(record) = inner.records.get(&status.job_id) {
            return Ok(CreateOutcome::Existing {
                status: record.status.clone(),
                fingerprint: record.fingerprint.clone(),
                published: record.published,
                lane: record.lane,
            });
        }
        let tenant = status.tenant.as_str();
        let queued = inner.waiting.get(tenant).map_or(0, BTreeSet::len) as u32;
        if queued >= job.limits.max_queued_per_tenant {
            return Ok(CreateOutcome::QuotaExceeded { queued });
        }
        let lane = choose_lane(&mut inner, tenant, job.limits);
        inner.records.insert(
            status.job_id.clone(),
            Record {
                status: status.clone(),
                fingerprint: job.fingerprint.to_string(),
                published: false,
                cancel_requested: false,
                lane,
                pictures: job.pictures.to_vec(),
                contents: BTreeSet::new(),
                entered: status.created_at,
            },
        );
        inner.wait_in_line(&status.job_id, tenant, status.created_at);
        *inner.entered.entry(JobState::Queued).or_default() += 1;
        Ok(CreateOutcome::Created { lane })
    }

    async fn mark_published(&self, job_id: &str) -> Result<(), StatusError> {
        if let Some(record) = self.lock().records.get_mut(job_id) {
            record.published = true;
        }
        Ok(())
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobStatus>, StatusError> {
        let inner = self.lock();
        if inner.erased(job_id) {
            return Ok(None);
        }
        Ok(inner.records.get(job_id).map(|r| r.status.clone()))
    }

    async fn begin(&self, job: &BeginJob<'_>) -> Result<BeginOutcome, StatusError> {
        let mut inner = self.lock();
        if inner.erased(job.job_id) {
            return Ok(BeginOutcome::Erased);
        }
        let record = inner
            .records
            .entry(job.job_id.to_string())
            .or_insert_with(|| {
                let status = JobStatus::queued(
                    job.job_id,
                    job.project_id.map(str::to_string),
                    job.tenant,
                    job.total,
                );
                Record::adopted(status)
            });
        if record.status.state.is_final() {
            return Ok(BeginOutcome::AlreadyFinal(record.status.clone()));
        }
        record.status.start(job.attempt, job.total);
        let started = record.status.clone();
        inner.unledger(job.job_id, job.tenant);
        if let Some(claim) = job.claim {
            inner.settle(claim);
        }
        inner
            .served
            .insert(job.tenant.to_string(), now().timestamp_millis());
        inner
            .running
            .entry(job.tenant.to_string())
            .or_default()
            .insert(job.job_id.to_string(), Instant::now() + RUNNING_LEASE);
        inner.enter(job.job_id, JobState::Running);
        Ok(BeginOutcome::Started(started))
    }

    async fn add_progress(
        &self,
        job_id: &str,
        done: u32,
        failed: u32,
        took: Duration,
        content: Option<&str>,
    ) -> Result<(), StatusError> {
        let mut inner = self.lock();
        inner
            .image_seconds
            .observe(&IMAGE_SECONDS_BOUNDS, took.as_secs_f64());
        if inner.erased(job_id) {
            return Ok(());
        }
        if let Some(record) = inner.records.get_mut(job_id) {
            if record.status.state == JobState::Running {
                record.status.progress.done += done;
                record.status.progress.failed += failed;
            }
            if let Some(content) = content {
                record.contents.insert(content.to_string());
            }
        }
        Ok(())
    }

    async fn finish(&self, status: &JobStatus) -> Result<FinishOutcome, StatusError> {
        debug_assert!(status.state.is_final());
        let mut inner = self.lock();
        if inner.erased(&status.job_id) {
            return Ok(FinishOutcome::Erased);
        }
        match inner.records.get_mut(&status.job_id) {
            Some(record) if record.status.state.is_final() => {
                return Ok(FinishOutcome::Stored(record.status.clone()));
            }
            Some(record) => record.status = status.clone(),
            None => {
                inner
                    .records
                    .insert(status.job_id.clone(), Record::adopted(status.clone()));
            }
        }
        inner.unledger(&status.job_id, &status.tenant);
        if let Some(run) = run_seconds(status) {
            inner.runs.push_front(run);
            inner.runs.truncate(RECENT_RUNS);
        }
        inner
            .job_seconds
            .observe(&JOB_SECONDS_BOUNDS, job_seconds(status));
        inner.enter(&status.job_id, status.state);
        Ok(FinishOutcome::Stored(status.clone()))
    }

    async fn cancel(&self, job_id: &str) -> Result<CancelOutcome, StatusError> {
        let mut inner = self.lock();
        if inner.erased(job_id) {
            return Ok(CancelOutcome::NotFound);
        }
        let Some(record) = inner.records.get_mut(job_id) else {
            return Ok(CancelOutcome::NotFound);
        };
        match record.status.state {
            JobState::Queued => {
                record.status.cancel();
                let (cancelled, tenant) = (record.status.clone(), record.status.tenant.clone());
                inner.unledger(job_id, &tenant);
                inner.enter(job_id, JobState::Cancelled);
                Ok(CancelOutcome::Cancelled(cancelled))
            }
            JobState::Running => {
                record.cancel_requested = true;
                Ok(CancelOutcome::Requested(record.status.clone()))
            }
            _ => Ok(CancelOutcome::AlreadyFinal(record.status.clone())),
        }
    }

    async fn signal(&self, job_id: &str) -> Result<JobSignal, StatusError> {
        let inner = self.lock();
        if inner.erased(job_id) {
            return Ok(JobSignal::Erased);
        }
        let cancelled = inner
            .records
            .get(job_id)
            .is_some_and(|r| r.cancel_requested || r.status.state == JobState::Cancelled);
        Ok(if cancelled {
            JobSignal::Cancel
        } else {
            JobSignal::CarryOn
        })
    }

    async fn stats(&self) -> Result<Stats, StatusError> {
        let inner = self.lock();
        Ok(Stats {
            entered: JobState::ALL
                .iter()
                .map(|state| (*state, inner.entered.get(state).copied().unwrap_or(0)))
                .collect(),
            job_seconds: inner.job_seconds.clone(),
            image_seconds: inner.image_seconds.clone(),
        })
    }

    async fn check(&self) -> Result<(), StatusError> {
        Ok(())
    }
}

/// The tenant's lane, choosing one when it has none.
fn choose_lane(inner: &mut Inner, tenant: &str, limits: FairLimits) -> u16 {
    if let Some(lane) = inner.lane_of.get(tenant) {
        return *lane;
    }
    let held: Vec<(u16, u32)> = inner
        .lane_of
        .iter()
        .map(|(holder, lane)| {
            let waiting = inner.waiting.get(holder).map_or(0, BTreeSet::len);
            (*lane, waiting as u32)
        })
        .collect();
    let lane = fair::choose_lane(&held, limits.lanes);
    inner.lane_of.insert(tenant.to_string(), lane);
    lane
}

#[async_trait]
impl FairLedger for MemoryStatusStore {
    async fn dispatch_order(&self, lanes: u16) -> Result<DispatchOrder, StatusError> {
        let mut inner = self.lock();
        let loads = inner.loads();
        let mut order = fair::dispatch_order(&loads, lanes);
        if let Some(next) = fair::next_tenant(&loads) {
            let claim = super::Claim {
                tenant: next.tenant.clone(),
                id: uuid::Uuid::new_v4().simple().to_string(),
            };
            inner
                .claims
                .entry(claim.tenant.clone())
                .or_default()
                .insert(claim.id.clone(), Instant::now() + fair::CLAIM_FOR);
            order.claim = Some(claim);
        }
        Ok(order)
    }

    async fn release(&self, claim: &super::Claim) -> Result<(), StatusError> {
        self.lock().settle(claim);
        Ok(())
    }

    async fn work_waiting(&self) -> Result<bool, StatusError> {
        Ok(!self.lock().waiting.is_empty())
    }

    async fn renew(&self, job_id: &str, tenant: &str) -> Result<(), StatusError> {
        let mut inner = self.lock();
        if let Some(lease) = inner
            .running
            .get_mut(tenant)
            .and_then(|running| running.get_mut(job_id))
        {
            *lease = Instant::now() + RUNNING_LEASE;
        }
        Ok(())
    }

    async fn hand_back(&self, job_id: &str, tenant: &str, lane: u16) -> Result<(), StatusError> {
        let mut inner = self.lock();
        if inner.erased(job_id) {
            return Ok(());
        }
        inner.unledger(job_id, tenant);
        let Some(record) = inner.records.get_mut(job_id) else {
            return Ok(());
        };
        if record.status.state.is_final() {
            return Ok(());
        }
        record.lane = lane;
        let since = record.status.created_at;
        inner.wait_in_line(job_id, tenant, since);
        inner.lane_of.entry(tenant.to_string()).or_insert(lane);
        Ok(())
    }

    async fn place_in_line(&self, job_id: &str) -> Result<Option<QueuePlace>, StatusError> {
        let mut inner = self.lock();
        let Some(record) = inner.records.get(job_id) else {
            return Ok(None);
        };
        let tenant = record.status.tenant.clone();
        let Some(position) = inner
            .waiting
            .get(&tenant)
            .and_then(|queue| queue.iter().position(|(_, id)| id == job_id))
        else {
            return Ok(None);
        };
        let loads = inner.loads();
        let jobs_ahead = fair::jobs_ahead(&loads, &tenant, position as u32);
        Ok(Some(QueuePlace {
            jobs_ahead,
            estimated_wait_s: inner.pace().wait_seconds(jobs_ahead),
        }))
    }

    async fn tenants(&self) -> Result<Vec<TenantLoad>, StatusError> {
        Ok(self.lock().loads())
    }

    async fn pace(&self) -> Result<Pace, StatusError> {
        Ok(self.lock().pace())
    }
}

#[async_trait]
impl Erasure for MemoryStatusStore {
    async fn erase(
        &self,
        job_id: &str,
        tombstone_ttl: Duration,
    ) -> Result<Option<ErasedJob>, StatusError> {
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(job_id) else {
            return Ok(None);
        };
        record.cancel_requested = true;
        let erased = ErasedJob {
            status: record.status.clone(),
            pictures: record.pictures.clone(),
            contents: record.contents.iter().cloned().collect(),
        };
        inner
            .tombstones
            .insert(job_id.to_string(), Instant::now() + tombstone_ttl);
        inner.unledger(job_id, &erased.status.tenant);
        Ok(Some(erased))
    }

    async fn forget(&self, job_id: &str) -> Result<(), StatusError> {
        self.lock().records.remove(job_id);
        Ok(())
    }

    async fn is_erased(&self, job_id: &str) -> Result<bool, StatusError> {
        Ok(self.lock().erased(job_id))
    }
}

#[async_trait]
impl JobIndex for MemoryStatusStore {
    async fn search(&self, query: &JobQuery) -> Result<JobPage, StatusError> {
        let inner = self.lock();
        let visible = |record: &&Record| !inner.erased(&record.status.job_id);
        if let Some(job_id) = &query.job_id {
            let jobs = inner
                .records
                .get(job_id)
                .filter(visible)
                .filter(|r| {
                    let s = &r.status;
                    query.matches(s.project_id.as_deref(), &s.tenant, s.state)
                })
                .map(|r| JobSummary::from(&r.status))
                .into_iter()
                .collect();
            return Ok(JobPage {
                jobs,
                next_cursor: None,
            });
        }
        let by_state = matches!(query.index(), IndexKey::State(_));
        let score = |record: &Record| {
            if by_state {
                record.entered.timestamp_millis()
            } else {
                record.status.created_at.timestamp_millis()
            }
        };
        let mut hits: Vec<(i64, &Record)> = inner
            .records
            .values()
            .filter(visible)
            .filter(|r| {
                let s = &r.status;
                query.matches(s.project_id.as_deref(), &s.tenant, s.state)
            })
            .map(|r| (score(r), r))
            .collect();
        hits.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(b.1.status.job_id.cmp(&a.1.status.job_id))
        });
        if let Some(cursor) = &query.cursor {
            hits.retain(|(score, r)| after(cursor, *score, &r.status.job_id));
        }
        let size = query.page_size();
        let next_cursor = (hits.len() > size).then(|| {
            let (score, record) = hits[size - 1];
            Cursor {
                score,
                job_id: record.status.job_id.clone(),
            }
            .encode()
        });
        Ok(JobPage {
            jobs: hits
                .iter()
                .take(size)
                .map(|(_, r)| JobSummary::from(&r.status))
                .collect(),
            next_cursor,
        })
    }

    async fn project_jobs(&self, project_id: &str) -> Result<Vec<String>, StatusError> {
        let inner = self.lock();
        Ok(inner
            .records
            .values()
            .filter(|r| r.status.project_id.as_deref() == Some(project_id))
            .filter(|r| !inner.erased(&r.status.job_id))
            .map(|r| r.status.job_id.clone())
            .collect())
    }

    async fn recent(&self, since: DateTime<Utc>) -> Result<RecentCounts, StatusError> {
        let inner = self.lock();
        let mut counts = RecentCounts::default();
        for record in inner.records.values() {
            let state = record.status.state;
            let recent = record.entered >= since;
            match state {
                JobState::Queued => counts.queued += 1,
                JobState::Running => counts.running += 1,
                JobState::Succeeded if recent => counts.succeeded += 1,
                JobState::Failed if recent => counts.failed += 1,
                JobState::Cancelled if recent => counts.cancelled += 1,
                _ => {}
            }
        }
        Ok(counts)
    }
}

/// Whether an entry at (`score`, `job_id`) comes after the cursor, newest first.
pub(crate) fn after(cursor: &Cursor, score: i64, job_id: &str) -> bool {
    score < cursor.score || (score == cursor.score && job_id < cursor.job_id.as_str())
}

#[async_trait]
impl FleetRegistry for MemoryStatusStore {
    async fn worker_seen(&self, beat: &WorkerBeat) -> Result<(), StatusError> {
        let mut inner = self.lock();
        let at = now();
        let images_per_second = match inner.workers.get(&beat.worker_id) {
            Some(last) => {
                let seconds = (at - last.seen).num_milliseconds() as f64 / 1000.0;
                let images = beat.images.saturating_sub(last.beat.images) as f64;
                if seconds > 0.0 {
                    images / seconds
                } else {
                    last.images_per_second
                }
            }
            None => 0.0,
        };
        inner.workers.insert(
            beat.worker_id.clone(),
            WorkerEntry {
                beat: beat.clone(),
                seen: at,
                images_per_second,
            },
        );
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerSeen>, StatusError> {
        let mut inner = self.lock();
        let cutoff = now() - chrono::Duration::from_std(WORKER_SEEN_FOR).unwrap_or_default();
        inner.workers.retain(|_, worker| worker.seen >= cutoff);
        let mut seen: Vec<WorkerSeen> = inner
            .workers
            .values()
            .map(|worker| WorkerSeen {
                worker_id: worker.beat.worker_id.clone(),
                slots: worker.beat.slots,
                busy: worker.beat.busy,
                last_seen: worker.seen,
                images_per_second: worker.images_per_second,
            })
            .collect();
        seen.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Progress;

    const LIMITS: FairLimits = FairLimits {
        lanes: 8,
        max_queued_per_tenant: 3,
    };

    async fn accept(store: &MemoryStatusStore, id: &str, tenant: &str) -> CreateOutcome {
        let status = JobStatus::queued(id, Some("p".into()), tenant, 2);
        store
            .create(&NewJob {
                status: &status,
                fingerprint: "f",
                pictures: &["urls/abc".to_string()],
                limits: LIMITS,
            })
            .await
            .unwrap()
    }

    fn begin<'a>(id: &'a str, tenant: &'a str, attempt: u32) -> BeginJob<'a> {
        BeginJob {
            job_id: id,
            project_id: Some("p"),
            tenant,
            attempt,
            total: 2,
            claim: None,
        }
    }

    #[tokio::test]
    async fn transitions_never_go_backwards() {
        let store = MemoryStatusStore::new();
        assert_eq!(
            accept(&store, "j", "t").await,
            CreateOutcome::Created { lane: 1 }
        );
        assert!(
            matches!(accept(&store, "j", "t").await, CreateOutcome::Existing { fingerprint, lane: 1, .. } if fingerprint == "f")
        );
        let BeginOutcome::Started(running) = store.begin(&begin("j", "t", 1)).await.unwrap() else {
            panic!()
        };
        assert_eq!(running.state, JobState::Running);
        store
            .add_progress("j", 1, 0, Duration::from_millis(30), Some("c1"))
            .await
            .unwrap();
        store
            .add_progress("j", 0, 1, Duration::from_millis(70), None)
            .await
            .unwrap();
        assert_eq!(
            store.get("j").await.unwrap().unwrap().progress,
            Progress {
                total: 2,
                done: 1,
                failed: 1
            }
        );
        let mut done = running.clone();
        done.succeed_for_test();
        assert!(
            matches!(store.finish(&done).await.unwrap(), FinishOutcome::Stored(s) if s.state == JobState::Succeeded)
        );
        let mut late = running;
        late.fail(crate::status::JobError::new(
            crate::JobErrorCode::Internal,
            "late",
        ));
        assert!(
            matches!(store.finish(&late).await.unwrap(), FinishOutcome::Stored(s) if s.state == JobState::Succeeded),
            "first final state wins"
        );
        assert!(matches!(
            store.begin(&begin("j", "t", 2)).await.unwrap(),
            BeginOutcome::AlreadyFinal(_)
        ));
        let stats = store.stats().await.unwrap();
        let entered: HashMap<JobState, u64> = stats.entered.into_iter().collect();
        assert_eq!(
            (
                entered[&JobState::Queued],
                entered[&JobState::Running],
                entered[&JobState::Succeeded],
                entered[&JobState::Failed]
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(stats.image_seconds.count, 2);
        assert_eq!(stats.job_seconds.count, 1);
    }

    #[tokio::test]
    async fn cancel_queued_and_running() {
        let store = MemoryStatusStore::new();
        accept(&store, "q", "t").await;
        assert!(
            matches!(store.cancel("q").await.unwrap(), CancelOutcome::Cancelled(s) if s.state == JobState::Cancelled)
        );
        assert!(!store.work_waiting().await.unwrap(), "off the ledger");
        assert!(matches!(
            store.begin(&begin("q", "t", 1)).await.unwrap(),
            BeginOutcome::AlreadyFinal(_)
        ));
        accept(&store, "r", "t").await;
        store.begin(&begin("r", "t", 1)).await.unwrap();
        assert_eq!(store.signal("r").await.unwrap(), JobSignal::CarryOn);
        assert!(matches!(
            store.cancel("r").await.unwrap(),
            CancelOutcome::Requested(_)
        ));
        assert_eq!(store.signal("r").await.unwrap(), JobSignal::Cancel);
        assert_eq!(store.cancel("nope").await.unwrap(), CancelOutcome::NotFound);
    }

    #[tokio::test]
    async fn a_late_tenant_goes_first_and_its_place_in_line_shrinks() {
        let store = MemoryStatusStore::new();
        let limits = FairLimits {
            lanes: 8,
            max_queued_per_tenant: 100,
        };
        for i in 0..10 {
            let status = JobStatus::queued(&format!("a{i}"), None, "a", 1);
            let pictures: [String; 0] = [];
            store
                .create(&NewJob {
                    status: &status,
                    fingerprint: "f",
                    pictures: &pictures,
                    limits,
                })
                .await
                .unwrap();
        }
        store.begin(&begin("a0", "a", 1)).await.unwrap();
        store.begin(&begin("a1", "a", 1)).await.unwrap();
        assert_eq!(
            accept(&store, "b0", "b").await,
            CreateOutcome::Created { lane: 2 }
        );
        accept(&store, "b1", "b").await;
        let order = store.dispatch_order(8).await.unwrap();
        // This decision found nothing to start: its claim goes.
        store.release(order.claim.as_ref().unwrap()).await.unwrap();
        assert_eq!(order.lanes[..2], [2, 1], "b runs nothing: its lane first");
        let b1 = store.place_in_line("b1").await.unwrap().unwrap();
        assert_eq!(b1.jobs_ahead, 1, "only its own first job");
        let a9 = store.place_in_line("a9").await.unwrap().unwrap();
        assert_eq!(a9.jobs_ahead, 7 + 2);
        store.begin(&begin("b0", "b", 1)).await.unwrap();
        assert_eq!(
            store.place_in_line("b1").await.unwrap().unwrap().jobs_ahead,
            0
        );
        assert_eq!(store.place_in_line("b0").await.unwrap(), None, "running");
        // Handed back: b0 waits again, on the lane it went back to.
        store.hand_back("b0", "b", 2).await.unwrap();
        assert_eq!(
            store.place_in_line("b0").await.unwrap().unwrap().jobs_ahead,
            0
        );
        let loads = store.tenants().await.unwrap();
        let b = loads.iter().find(|l| l.tenant == "b").unwrap();
        assert_eq!((b.queued, b.running), (2, 0));
    }

    #[tokio::test]
    async fn a_decision_claims_its_slot_so_the_next_one_goes_elsewhere() {
        let store = MemoryStatusStore::new();
        for id in ["a0", "a1"] {
            accept(&store, id, "a").await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        accept(&store, "b0", "b").await;
        let first = store.dispatch_order(8).await.unwrap();
        let second = store.dispatch_order(8).await.unwrap();
        let (first_claim, second_claim) = (first.claim.unwrap(), second.claim.unwrap());
        assert_eq!(first_claim.tenant, "a", "tie: the longer wait");
        assert_eq!(second_claim.tenant, "b", "a has a claimed slot now");
        assert_eq!(second.lanes[0], 2);
        // A finds nothing: its claim goes; B starts with its claim.
        store.release(&first_claim).await.unwrap();
        let mut start = begin("b0", "b", 1);
        start.claim = Some(&second_claim);
        store.begin(&start).await.unwrap();
        let loads = store.tenants().await.unwrap();
        let running: Vec<(String, u32)> = loads
            .iter()
            .map(|l| (l.tenant.clone(), l.running))
            .collect();
        assert_eq!(running, [("a".to_string(), 0), ("b".to_string(), 1)]);
    }

    #[tokio::test]
    async fn a_tenant_over_its_quota_is_refused_and_others_are_not() {
        let store = MemoryStatusStore::new();
        for i in 0..3 {
            accept(&store, &format!("a{i}"), "a").await;
        }
        assert_eq!(
            accept(&store, "a3", "a").await,
            CreateOutcome::QuotaExceeded { queued: 3 }
        );
        assert!(matches!(
            accept(&store, "b0", "b").await,
            CreateOutcome::Created { .. }
        ));
        store.begin(&begin("a0", "a", 1)).await.unwrap();
        assert!(
            matches!(
                accept(&store, "a3", "a").await,
                CreateOutcome::Created { .. }
            ),
            "room again once a job started"
        );
    }

    #[tokio::test]
    async fn an_erased_job_stays_gone_until_its_tombstone_expires() {
        let store = MemoryStatusStore::new();
        accept(&store, "e", "t").await;
        store.begin(&begin("e", "t", 1)).await.unwrap();
        store
            .add_progress("e", 1, 0, Duration::ZERO, Some("c1"))
            .await
            .unwrap();
        let erased = store
            .erase("e", Duration::from_millis(300))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(erased.pictures, ["urls/abc"]);
        assert_eq!(erased.contents, ["c1"]);
        assert_eq!(store.signal("e").await.unwrap(), JobSignal::Erased);
        assert_eq!(store.get("e").await.unwrap(), None);
        let mut finished = erased.status.clone();
        finished.succeed_for_test();
        assert_eq!(
            store.finish(&finished).await.unwrap(),
            FinishOutcome::Erased
        );
        assert_eq!(
            store.begin(&begin("e", "t", 2)).await.unwrap(),
            BeginOutcome::Erased
        );
        assert_eq!(accept(&store, "e", "t").await, CreateOutcome::Erased);
        store.forget("e").await.unwrap();
        assert_eq!(
            store.erase("e", Duration::from_secs(1)).await.unwrap(),
            None
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!store.is_erased("e").await.unwrap());
        assert!(matches!(
            accept(&store, "e", "t").await,
            CreateOutcome::Created { .. }
        ));
    }

    #[tokio::test]
    async fn search_pages_newest_first_with_filters() {
        let store = MemoryStatusStore::new();
        for i in 0..5 {
            accept(
                &store,
                &format!("j{i}"),
                if i % 2 == 0 { "even" } else { "odd" },
            )
            .await;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let query = |tenant: Option<&str>, cursor: Option<Cursor>| JobQuery {
            tenant: tenant.map(str::to_string),
            limit: 2,
            cursor,
            ..Default::default()
        };
        let first = store.search(&query(None, None)).await.unwrap();
        let ids: Vec<_> = first.jobs.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["j4", "j3"]);
        let next = Cursor::decode(first.next_cursor.as_deref().unwrap()).unwrap();
        let second = store.search(&query(None, Some(next))).await.unwrap();
        let ids: Vec<_> = second.jobs.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["j2", "j1"]);
        let even = store.search(&query(Some("even"), None)).await.unwrap();
        assert!(even.jobs.iter().all(|j| j.tenant == "even"));
        assert_eq!(store.project_jobs("p").await.unwrap().len(), 5);
        let exact = store
            .search(&JobQuery {
                job_id: Some("j3".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(exact.jobs.len(), 1);
    }
}
