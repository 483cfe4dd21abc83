//! The worker loop: take a delivery, run its job, and settle it in the
//! contract's order — final status written, completion published, delivery
//! acknowledged — so a worker that dies anywhere in between leaves a job that
//! is redelivered and finished again, never one that is lost or stuck.
//!
//! Taking is pull-based (see [`crate::dispatch`]): with a free job slot the
//! loop asks its [`LaneOrder`] which lanes to try and takes ONE message from
//! the first that has one; the job runs holding the slot. With nothing
//! anywhere it waits, looking again when the order says work is waiting
//! ([`crate::dispatch::POLL_EVERY`]) and asking every lane at least every
//! [`crate::dispatch::SWEEP_EVERY`].
//!
//! Shutdown (the future given to [`Worker::run`]) stops taking deliveries,
//! lets running jobs finish within the grace period, then interrupts the rest,
//! which hand their deliveries back to the queue.
//!
//! Backends that vanish are waited out, never spun on: the loop backs off
//! (with jitter, up to 30 s) until the broker answers again, and a job that
//! cannot store its status or publish its completion retries in place while
//! holding its delivery (lease renewed), so an outage neither burns CPU and
//! log lines nor counts towards the job's delivery limit. Each outage is
//! logged when it starts and when it ends ([`zipfleet_shared::retry`]).

use crate::dispatch::{lanes_to_try, IdlePacing, LaneOrder, TAKE_PATIENCE};
use crate::ecs::Protection;
use crate::health::{Liveness, Readiness, READINESS_EVERY};
use crate::job::{run_job, JobEnv, JobOutcome};
use crate::outcome::Interrupted;
use futures::FutureExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, error_span, info, warn, Instrument};
use zipfleet_shared::broker::{Broker, BrokerError, Delivery, Lane};
use zipfleet_shared::message::{JobMessage, ReceivedJob, SpecPayload};
use zipfleet_shared::reachability::{check_backends, Checks};
use zipfleet_shared::retry::{retry_transient, Backoff, GaveUp, OutageLog, Transient};
use zipfleet_shared::spec::{Job, JobSpec, SpecLimits};
use zipfleet_shared::status::DEFAULT_TENANT;
use zipfleet_shared::status::{JobError, JobStatus};
use zipfleet_shared::status_store::RUNNING_LEASE;
use zipfleet_shared::status_store::{BeginJob, BeginOutcome, Claim, FinishOutcome};
use zipfleet_shared::JobErrorCode;

/// Largest claim-checked spec a worker reads.
const MAX_SPEC_BYTES: u64 = 64 * 1024 * 1024;

/// The job loop turns at least this often even with nothing to do, so
/// `/healthz` can tell a quiet loop from a wedged one.
pub(crate) const LOOP_TICK: Duration = Duration::from_secs(5);

/// A worker: takes jobs from the jobs queue's lanes and runs them,
/// `concurrency` at a time.
pub struct Worker {
    pub env: Arc<JobEnv>,
    pub(crate) broker: Arc<dyn Broker>,
    /// Which lanes to take from first (the fair-share order, or
    /// [`crate::dispatch::Sweep`]); public so that the order can be swapped.
    pub lanes: Arc<dyn LaneOrder>,
    pub(crate) concurrency: u16,
    pub(crate) max_deliveries: u32,
    pub(crate) shutdown_grace: Duration,
    pub(crate) spec_limits: SpecLimits,
    /// Stamped every time the job loop turns; read by `/healthz`.
    pub(crate) liveness: Arc<Liveness>,
    /// The last check of the backends; read by `/readyz`.
    pub(crate) readiness: Arc<Readiness>,
    /// ECS scale-in protection while jobs run (a no-op off ECS).
    pub(crate) protection: Protection,
}

/// What one look at the lanes came back with.
enum Look {
    /// A message, from the lane at this position of the look.
    Taken(Delivery, usize),
    /// Every lane asked was empty.
    Nothing,
    Failed(BrokerError),
    /// Shutdown came between two lanes.
    ShuttingDown,
}

/// One decision's outcome: what the look found, the claim a taken job
/// starts with, and whether the look asked every lane.
struct Attempt {
    taken: Look,
    claim: Option<Claim>,
    swept: bool,
}

/// What an idle wait ended with.
enum Idle {
    /// Look again; `by_waiting`: because the order said work is waiting.
    Look {
        by_waiting: bool,
    },
    ShuttingDown,
}

/// Whether `shutdown` has completed, without waiting.
fn has_completed<F: Future<Output = ()>>(shutdown: &mut Pin<&mut F>) -> bool {
    shutdown.as_mut().now_or_never().is_some()
}

impl Worker {
    /// Serve until `shutdown` completes, then drain (see the module doc).
    ///
    /// A message is taken only while a job slot is held for it, and every
    /// [`Broker::take`] is awaited to its end — never raced against shutdown
    /// or anything else — so no receive that may hold a message is ever
    /// abandoned, and the worker never holds a message it is not running:
    /// that is structural, not a property each broker must provide. Takes
    /// do not wait ([`TAKE_PATIENCE`]), so shutdown is seen within one
    /// request; it is checked between lanes, and everything else the loop
    /// waits on (a free slot, the idle pause, the backoff, the order) is
    /// raced against it. Backoff after a broker failure resets only once a
    /// take really answered.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let interrupt_jobs = CancellationToken::new();
        let mut jobs = JoinSet::new();
        tokio::pin!(shutdown);
        let slots = Arc::new(Semaphore::new(usize::from(self.concurrency.max(1))));
        let mut backoff = Backoff::default();
        let mut heartbeat = tokio::time::interval(LOOP_TICK);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let outage = &self.env.outages.broker;
        let lanes = self.broker.lanes();
        let mut pacing = IdlePacing::new(Instant::now());
        // Whether the next look is made because the order said work is waiting.
        let mut asked_by_waiting = false;
        let registry = self.announce(lanes);
        'serving: loop {
            self.liveness.beat();
            if outage.is_down()
                && !self
                    .broker_back(&mut backoff, &mut jobs, &mut shutdown)
                    .await
            {
                break 'serving;
            }
            // A free slot first: a message is never taken without one to run it.
            let slot = tokio::select! {
                () = &mut shutdown => break 'serving,
                slot = slots.clone().acquire_owned() => slot.expect("the slots are never closed"),
                Some(finished) = jobs.join_next(), if !jobs.is_empty() => {
                    self.job_ended(finished, jobs.len());
                    continue;
                }
                _ = heartbeat.tick() => continue,
            };
            let sweep = pacing.sweep_due(Instant::now());
            let Some(Attempt {
                taken,
                claim,
                swept,
            }) = self.attempt(lanes, sweep, &mut shutdown).await
            else {
                break 'serving;
            };
            let by_waiting = std::mem::take(&mut asked_by_waiting);
            match taken {
                Look::Taken(delivery, _) => {
                    outage.recovered();
                    backoff.reset();
                    pacing.found_work(Instant::now(), swept);
                    let worker = self.clone();
                    let interrupt = interrupt_jobs.clone();
                    jobs.spawn(async move {
                        // Held while the job runs: the slot frees when its task ends.
                        let _slot = slot;
                        worker.handle(delivery, claim, interrupt).await;
                    });
                    self.protection.set_busy(true);
                    continue;
                }
                Look::Failed(err) => {
                    outage.failed("taking from the jobs queue", &err);
                    continue;
                }
                Look::ShuttingDown => break 'serving,
                Look::Nothing => {
                    outage.recovered();
                    backoff.reset();
                    pacing.found_nothing(Instant::now(), swept, by_waiting);
                    drop(slot);
                }
            }
            match self.idle(&mut pacing, &mut jobs, &mut shutdown).await {
                Idle::Look { by_waiting } => asked_by_waiting = by_waiting,
                Idle::ShuttingDown => break 'serving,
            }
        }
        registry.cancel();
        self.drain(jobs, interrupt_jobs).await;
    }

    /// Start beating in the worker registry (until the returned token is
    /// cancelled) and say what this worker takes from.
    fn announce(self: &Arc<Self>, lanes: u16) -> CancellationToken {
        let registry = CancellationToken::new();
        tokio::spawn(crate::registry::announce(self.clone(), registry.clone()));
        info!(
            broker = self.broker.kind(),
            concurrency = self.concurrency,
            lanes,
            "taking jobs"
        );
        registry
    }

    /// One decision: ask the order (and its claim on the slot), try its
    /// lanes — every lane when a sweep is due — and release the claim if
    /// nothing was taken. `None` if shutdown came while asking.
    async fn attempt<F: Future<Output = ()>>(
        &self,
        lanes: u16,
        sweep: bool,
        shutdown: &mut Pin<&mut F>,
    ) -> Option<Attempt> {
        let order = tokio::select! {
            () = shutdown.as_mut() => return None,
            order = self.lanes.order(lanes) => order,
        };
        let named = order.lanes.len();
        let (look, swept) = lanes_to_try(order.lanes, lanes, sweep);
        let taken = self.look(&look, shutdown).await;
        let claim = match (&taken, order.claim) {
            (Look::Taken(_, position), claim) => {
                self.env.metrics.dispatched(*position < named);
                claim
            }
            (_, Some(claim)) => {
                self.lanes.release(claim).await;
                None
            }
            (_, None) => None,
        };
        Some(Attempt {
            taken,
            claim,
            swept,
        })
    }

    /// The broker was down: wait out the backoff (still collecting finished
    /// jobs), then ask whether it is back. `false` if shutdown came first.
    /// Whether it is really back is for the next take to say.
    async fn broker_back<F: Future<Output = ()>>(
        &self,
        backoff: &mut Backoff,
        jobs: &mut JoinSet<()>,
        shutdown: &mut Pin<&mut F>,
    ) -> bool {
        let wake = Instant::now() + backoff.next_delay();
        loop {
            tokio::select! {
                () = shutdown.as_mut() => return false,
                Some(finished) = jobs.join_next(), if !jobs.is_empty() => {
                    self.job_ended(finished, jobs.len());
                }
                () = tokio::time::sleep_until(wake) => break,
            }
        }
        self.liveness.beat();
        let checked = tokio::select! {
            () = shutdown.as_mut() => return false,
            checked = self.broker.check() => checked,
        };
        if let Err(err) = checked {
            self.env.outages.broker.failed("checking the broker", &err);
        }
        true
    }

    /// Nothing was found: wait for a sweep, or for the order to say work is
    /// waiting, collecting finished jobs meanwhile.
    async fn idle<F: Future<Output = ()>>(
        &self,
        pacing: &mut IdlePacing,
        jobs: &mut JoinSet<()>,
        shutdown: &mut Pin<&mut F>,
    ) -> Idle {
        loop {
            let wake = pacing.next_wake(Instant::now());
            tokio::select! {
                () = shutdown.as_mut() => return Idle::ShuttingDown,
                Some(finished) = jobs.join_next(), if !jobs.is_empty() => {
                    self.job_ended(finished, jobs.len());
                    continue;
                }
                () = tokio::time::sleep_until(wake) => {}
            }
            self.liveness.beat();
            let now = Instant::now();
            if pacing.sweep_due(now) {
                return Idle::Look { by_waiting: false };
            }
            if pacing.trusts_waiting(now) {
                let waiting = tokio::select! {
                    () = shutdown.as_mut() => return Idle::ShuttingDown,
                    waiting = self.lanes.work_waiting() => waiting,
                };
                if waiting {
                    return Idle::Look { by_waiting: true };
                }
                pacing.nothing_waiting();
            }
        }
    }

    /// Shutdown: take nothing more, let running jobs finish within the
    /// grace period, then interrupt the rest (they hand their deliveries back).
    async fn drain(&self, mut jobs: JoinSet<()>, interrupt_jobs: CancellationToken) {
        info!(running = jobs.len(), grace = ?self.shutdown_grace, "shutting down: taking no more jobs");
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            while jobs.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                running = jobs.len(),
                "grace period over; handing running jobs back"
            );
            interrupt_jobs.cancel();
            while jobs.join_next().await.is_some() {}
        }
        self.protection.set_busy(false);
        info!("worker stopped");
    }

    /// Take one message from the first of `lanes` that has one. Each take is
    /// awaited to its end; shutdown is only looked at between two.
    async fn look<F: Future<Output = ()>>(
        &self,
        lanes: &[Lane],
        shutdown: &mut Pin<&mut F>,
    ) -> Look {
        for (position, &lane) in lanes.iter().enumerate() {
            if has_completed(shutdown) {
                return Look::ShuttingDown;
            }
            match self.broker.take(lane, TAKE_PATIENCE).await {
                Ok(Some(delivery)) => return Look::Taken(delivery, position),
                Ok(None) => {}
                Err(err) => return Look::Failed(err),
            }
        }
        Look::Nothing
    }

    /// A job task ended (`running` are still going).
    fn job_ended(&self, finished: Result<(), JoinError>, running: usize) {
        if let Err(err) = finished {
            error!(%err, "a job task failed");
        }
        self.protection.set_busy(running > 0);
    }

    /// Keep [`Worker::readiness`] fresh (every [`READINESS_EVERY`]) until `stop`.
    pub async fn watch_readiness(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let checks = self.reachability().await;
            self.readiness.set(checks.to_vec());
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(READINESS_EVERY) => {}
            }
        }
    }

    /// Whether the broker, object store and status store answer.
    pub(crate) async fn reachability(&self) -> Checks {
        check_backends(
            self.broker.as_ref(),
            self.env.store.as_ref(),
            self.env.status.as_ref(),
        )
        .await
    }

    /// Process one delivery to the end, settling it exactly once.
    /// `claim`: the fair-share decision's hold on the slot, settled when the
    /// job starts (or released if it does not).
    pub(crate) async fn handle(
        &self,
        delivery: Delivery,
        claim: Option<Claim>,
        interrupt: CancellationToken,
    ) {
        let message = match JobMessage::parse(&delivery.body) {
            Ok(message) => message,
            Err(err) => {
                // The parser's words may quote the message (a URL, a label):
                // `debug` only; the dead-letter reason keeps them for operators.
                warn!(
                    bytes = delivery.body.len(),
                    "malformed message; dead-lettering it"
                );
                debug!(%err, "why the message is malformed");
                if let Err(err) = delivery.dead_letter(&err.to_string()).await {
                    error!(%err, "could not dead-letter a malformed message");
                }
                if let Some(claim) = claim {
                    self.lanes.release(claim).await;
                }
                return;
            }
        };
        // At error level so that it is never filtered out: every line of the
        // job, warnings included, names the job whatever RUST_LOG says.
        let span = error_span!("job", job_id = %message.job_id, attempt = delivery.attempt);
        self.handle_job(delivery, message, claim, interrupt)
            .instrument(span)
            .await;
    }

    async fn handle_job(
        &self,
        delivery: Delivery,
        message: ReceivedJob,
        claim: Option<Claim>,
        interrupt: CancellationToken,
    ) {
        let _running = self.env.metrics.job_started();
        // Everything up to the acknowledgement runs under the delivery's
        // lease, so a job that waits out a status-store outage is not given
        // to a second worker meanwhile.
        let settle = async {
            match self
                .prepare(&delivery, &message, claim.as_ref(), &interrupt)
                .await
            {
                Prepared::Settled(settlement) => {
                    // Nothing started: the slot's claim is not settled by a start.
                    if let Some(claim) = claim.clone() {
                        self.lanes.release(claim).await;
                    }
                    settlement
                }
                Prepared::Started { status, job } => {
                    let tenant = job.tenant.as_str();
                    let run = self.run_started(status, &job, delivery.attempt, &interrupt);
                    let settlement = self.in_flight(&message.job_id, tenant, run).await;
                    if matches!(settlement, Settlement::HandBack(_)) {
                        self.back_in_line(&message.job_id, tenant, delivery.lane)
                            .await;
                    }
                    settlement
                }
            }
        };
        let settlement = with_lease(&delivery, settle).await;
        match settlement {
            Settlement::Ack { status } => {
                self.env.metrics.job_finished(status.state);
                if let Err(err) = delivery.ack().await {
                    // The broker will redeliver; the redelivery finds the final status.
                    warn!(%err, "could not acknowledge the job");
                }
            }
            Settlement::HandBack(reason) => self.hand_back(delivery, &reason).await,
            Settlement::Drop => {
                if let Err(err) = delivery.ack().await {
                    warn!(%err, "could not acknowledge an erased job's message");
                }
            }
        }
    }

    /// Keep a running job counted as its tenant's work in flight (the
    /// ledger's lease on it) while `run` runs.
    async fn in_flight(
        &self,
        job_id: &str,
        tenant: &str,
        run: impl Future<Output = Settlement>,
    ) -> Settlement {
        tokio::pin!(run);
        let mut renew = tokio::time::interval(RUNNING_LEASE / 3);
        renew.tick().await;
        loop {
            tokio::select! {
                settlement = &mut run => return settlement,
                _ = renew.tick() => {
                    if let Err(err) = self.env.status.renew(job_id, tenant).await {
                        debug!(%err, "could not renew the job's place in the fair-share ledger");
                    }
                }
            }
        }
    }

    /// A started job goes back to the queue: it waits in line again, on the
    /// lane its message returns to. Advisory (the broker holds the job): a
    /// ledger that cannot be told only makes dispatch less fair.
    async fn back_in_line(&self, job_id: &str, tenant: &str, lane: Lane) {
        if let Err(err) = self.env.status.hand_back(job_id, tenant, lane.0).await {
            debug!(%err, "could not put a handed-back job back in line");
        }
    }

    /// Read the job and start it (or find it already ended, or erased).
    async fn prepare(
        &self,
        delivery: &Delivery,
        message: &ReceivedJob,
        claim: Option<&Claim>,
        interrupt: &CancellationToken,
    ) -> Prepared {
        let job_id = message.job_id.clone();
        let attempt = delivery.attempt;
        let spec = match self.load_spec(&message.spec).await {
            Ok(spec) => spec,
            Err(SpecProblem::Transient(err)) => {
                return Prepared::Settled(Settlement::HandBack(format!(
                    "could not read the job's spec: {err}"
                )))
            }
            Err(SpecProblem::Invalid(reason)) => {
                let mut status = JobStatus::queued(&job_id, None, DEFAULT_TENANT, 0);
                status.attempt = attempt;
                let error = JobError::new(JobErrorCode::InvalidSpec, reason);
                return Prepared::Settled(
                    self.conclude(finish(status, JobOutcome::Failed(error)), interrupt)
                        .await,
                );
            }
        };
        let total = spec.images.len() as u32;
        let begin = BeginJob {
            job_id: &job_id,
            project_id: spec.project_id.as_deref(),
            tenant: spec.tenant.as_str(),
            attempt,
            total,
            claim,
        };
        // A status store that lost its data (restarted without persistence)
        // answers "unknown job": `begin` then re-creates the status from
        // what the message carries, so the job still reaches a final state.
        let begun = retry_in_place(
            &self.env.outages.status,
            "starting the job's status",
            interrupt,
            || self.env.status.begin(&begin),
        )
        .await;
        let started = match begun {
            Ok(BeginOutcome::Started(status)) => status,
            Ok(BeginOutcome::AlreadyFinal(status)) => {
                info!(
                    state = status.state.as_str(),
                    "job already ended; re-publishing its completion"
                );
                return Prepared::Settled(self.publish(status, interrupt).await);
            }
            Ok(BeginOutcome::Erased) => {
                info!("job was erased; dropping its message");
                return Prepared::Settled(Settlement::Drop);
            }
            Err(GaveUp::Failed(err)) => {
                return Prepared::Settled(Settlement::HandBack(err.to_string()))
            }
            Err(GaveUp::Interrupted) => {
                return Prepared::Settled(Settlement::HandBack("worker shutting down".into()))
            }
        };
        info!(images = total, "job started");
        Prepared::Started {
            status: started,
            job: spec,
        }
    }

    /// Run a started job and settle what came of it.
    async fn run_started(
        &self,
        started: JobStatus,
        spec: &Job,
        attempt: u32,
        interrupt: &CancellationToken,
    ) -> Settlement {
        match run_job(&self.env, &started.job_id, spec, interrupt).await {
            Ok((outcome, progress)) => {
                let mut status = finish(started, outcome);
                status.progress = progress;
                self.conclude(status, interrupt).await
            }
            Err(Interrupted::Shutdown) => Settlement::HandBack("worker shutting down".into()),
            Err(Interrupted::Erased) => {
                info!("the job was erased while it ran; nothing of it is kept");
                Settlement::Drop
            }
            Err(err @ Interrupted::Transient { .. }) if attempt >= self.max_deliveries => {
                let error = JobError::new(
                    JobErrorCode::TooManyAttempts,
                    format!("gave up after {attempt} attempts; last problem: {err}"),
                );
                self.conclude(finish(started, JobOutcome::Failed(error)), interrupt)
                    .await
            }
            Err(err @ Interrupted::Transient { .. }) => {
                // A short pause so a broken backend is not hammered by instant redeliveries.
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt.min(10)))).await;
                Settlement::HandBack(err.to_string())
            }
        }
    }

    /// The job: its spec inline, or fetched from the store (claim check),
    /// parsed into a [`Job`] once.
    async fn load_spec(&self, payload: &SpecPayload) -> Result<Job, SpecProblem> {
        let invalid = |err: zipfleet_shared::SpecError| SpecProblem::Invalid(err.to_string());
        match payload {
            SpecPayload::Inline(spec) => spec.validate(&self.spec_limits).map_err(invalid),
            SpecPayload::ClaimCheck(location) => {
                let store = self.env.store.as_ref();
                let bytes =
                    zipfleet_shared::store::read_small(store, &location.key, MAX_SPEC_BYTES)
                        .await
                        .map_err(|err| {
                            if err.is_transient() {
                                SpecProblem::Transient(err)
                            } else {
                                SpecProblem::Invalid(format!(
                                    "the job's spec could not be read: {err}"
                                ))
                            }
                        })?;
                let spec = JobSpec::parse_unvalidated(&bytes).map_err(invalid)?;
                spec.validate(&self.spec_limits).map_err(invalid)
            }
        }
    }

    /// Write the final status (first final state wins), then publish it.
    async fn conclude(&self, status: JobStatus, interrupt: &CancellationToken) -> Settlement {
        let stored = retry_in_place(
            &self.env.outages.status,
            "storing the final status",
            interrupt,
            || self.env.status.finish(&status),
        )
        .await;
        match stored {
            Ok(FinishOutcome::Stored(stored)) => {
                info!(state = stored.state.as_str(), "job finished");
                self.publish(stored, interrupt).await
            }
            Ok(FinishOutcome::Erased) => {
                // Erased while it ran: whatever it uploaded goes too.
                if let Some(result) = &status.result {
                    crate::job::delete_zip(&self.env, &result.location.key).await;
                }
                info!("job was erased while it ran; nothing of it is kept");
                Settlement::Drop
            }
            Err(GaveUp::Failed(err)) => {
                Settlement::HandBack(format!("could not store the final status: {err}"))
            }
            Err(GaveUp::Interrupted) => Settlement::HandBack("worker shutting down".into()),
        }
    }

    /// Publish the completion message; the delivery may be acknowledged after it.
    async fn publish(&self, status: JobStatus, interrupt: &CancellationToken) -> Settlement {
        let body = serde_json::to_vec(&status).expect("a status always serializes");
        let published = retry_in_place(
            &self.env.outages.broker,
            "publishing the completion",
            interrupt,
            || self.broker.publish_completion(&status.job_id, &body),
        )
        .await;
        match published {
            Ok(()) => Settlement::Ack { status },
            Err(GaveUp::Failed(err)) => {
                Settlement::HandBack(format!("could not publish the completion: {err}"))
            }
            Err(GaveUp::Interrupted) => Settlement::HandBack("worker shutting down".into()),
        }
    }

    async fn hand_back(&self, delivery: Delivery, reason: &str) {
        warn!(reason, "handing the job back to the queue");
        if let Err(err) = delivery.hand_back().await {
            warn!(%err, "could not hand the job back; the broker will redeliver it");
        }
    }
}

/// A delivery read and its job started, or already settled.
// A short-lived value: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Prepared {
    Settled(Settlement),
    /// `running` now: run it.
    Started {
        status: JobStatus,
        job: Job,
    },
}

/// What to do with a delivery once its job is decided.
// A short-lived value: boxing the status would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Settlement {
    /// The final status is stored and published: acknowledge.
    Ack { status: JobStatus },
    /// Give it back for another attempt (shutdown, or a backend that stayed away).
    HandBack(String),
    /// The job was erased: acknowledge, publish nothing.
    Drop,
}

/// How long a job waits out a backend outage while holding its delivery
/// before handing it back. Long enough for a broker or Redis restart.
pub(crate) const RETRY_IN_PLACE_FOR: Duration = Duration::from_secs(300);

/// [`retry_transient`] for the steps that settle a job, with their patience.
async fn retry_in_place<T, E: Transient, F: Future<Output = Result<T, E>>>(
    outage: &OutageLog,
    what: &str,
    interrupt: &CancellationToken,
    operation: impl FnMut() -> F,
) -> Result<T, GaveUp<E>> {
    retry_transient(outage, what, interrupt, RETRY_IN_PLACE_FOR, operation).await
}

/// Why a job's spec could not be had.
enum SpecProblem {
    /// The store holding a claim-checked spec is unreachable: hand the job back.
    Transient(zipfleet_shared::store::StoreError),
    /// The spec breaks the rules (or cannot be read at all): the job fails.
    Invalid(String),
}

/// The final status document for an outcome.
fn finish(mut status: JobStatus, outcome: JobOutcome) -> JobStatus {
    match outcome {
        JobOutcome::Succeeded(result) => status.succeed(result),
        JobOutcome::Failed(error) => status.fail(error),
        JobOutcome::Cancelled => status.cancel(),
    }
    status
}

/// Run `work` while keeping the delivery's lease alive, on brokers whose leases expire.
async fn with_lease<T>(delivery: &Delivery, work: impl Future<Output = T>) -> T {
    let Some(interval) = delivery.lease_renewal_interval() else {
        return work.await;
    };
    tokio::pin!(work);
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = ticker.tick() => {
                if let Err(err) = delivery.extend_lease().await {
                    warn!(%err, "could not extend the job's lease");
                }
            }
        }
    }
}
