//! The worker loop: take a delivery, run its job, and settle it in the
//! contract's order — final status written, completion published, delivery
//! acknowledged — so a worker that dies anywhere in between leaves a job that
//! is redelivered and finished again, never one that is lost or stuck.
//!
//! Shutdown (the future given to [`Worker::run`]) stops taking deliveries,
//! lets running jobs finish within the grace period, then interrupts the rest,
//! which hand their deliveries back to the queue.

use crate::job::{run_job, Interrupted, JobEnv, JobOutcome};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};
use zipfleet_shared::broker::{Broker, Delivery};
use zipfleet_shared::message::JobMessage;
use zipfleet_shared::spec::{JobSpec, SpecLimits};
use zipfleet_shared::status::{now, JobError, JobState, JobStatus};
use zipfleet_shared::status_store::{memory::cancelled_error, BeginOutcome};
use zipfleet_shared::JobErrorCode;

/// Largest claim-checked spec a worker reads.
const MAX_SPEC_BYTES: u64 = 64 * 1024 * 1024;

/// A worker: consumes the jobs queue and runs jobs, `concurrency` at a time.
pub struct Worker {
    pub env: Arc<JobEnv>,
    pub broker: Arc<dyn Broker>,
    pub concurrency: u16,
    pub max_deliveries: u32,
    pub shutdown_grace: Duration,
    pub spec_limits: SpecLimits,
}

impl Worker {
    /// Serve until `shutdown` completes, then drain (see the module doc).
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let interrupt_jobs = CancellationToken::new();
        let mut jobs = JoinSet::new();
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(200);
        // Kept outside the loop so that, at shutdown, running jobs can still
        // settle their deliveries on its channel.
        let mut current: Option<Box<dyn zipfleet_shared::broker::Consumer>> = None;
        'serving: loop {
            let consumer = tokio::select! {
                () = &mut shutdown => break 'serving,
                consumer = self.broker.consumer(self.concurrency) => consumer,
            };
            let consumer = match consumer {
                Ok(consumer) => {
                    backoff = Duration::from_millis(200);
                    current.insert(consumer)
                }
                Err(err) => {
                    warn!(%err, retry_in = ?backoff, "cannot consume the jobs queue");
                    tokio::select! {
                        () = &mut shutdown => break 'serving,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            info!(broker = self.broker.kind(), concurrency = self.concurrency, "consuming jobs");
            loop {
                tokio::select! {
                    () = &mut shutdown => break 'serving,
                    delivery = consumer.next() => match delivery {
                        Ok(delivery) => {
                            let worker = self.clone();
                            let interrupt = interrupt_jobs.clone();
                            jobs.spawn(async move { worker.handle(delivery, interrupt).await });
                        }
                        Err(err) => {
                            warn!(%err, "the jobs consumer broke; reconnecting");
                            break;
                        }
                    },
                    Some(finished) = jobs.join_next(), if !jobs.is_empty() => {
                        if let Err(err) = finished {
                            error!(%err, "a job task failed");
                        }
                    }
                }
            }
        }

        if let Some(consumer) = current.as_mut() {
            consumer.stop().await;
        }
        info!(running = jobs.len(), grace = ?self.shutdown_grace, "shutting down: taking no more jobs");
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            while jobs.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(running = jobs.len(), "grace period over; handing running jobs back");
            interrupt_jobs.cancel();
            while jobs.join_next().await.is_some() {}
        }
        info!("worker stopped");
    }

    /// Process one delivery to the end, settling it exactly once.
    pub async fn handle(&self, delivery: Delivery, interrupt: CancellationToken) {
        let message = match JobMessage::parse(&delivery.body) {
            Ok(message) => message,
            Err(err) => {
                warn!(%err, bytes = delivery.body.len(), "malformed message; dead-lettering it");
                if let Err(err) = delivery.dead_letter(&err.to_string()).await {
                    error!(%err, "could not dead-letter a malformed message");
                }
                return;
            }
        };
        let span = info_span!("job", job_id = %message.job_id, attempt = delivery.attempt);
        self.handle_job(delivery, message, interrupt).instrument(span).await;
    }

    async fn handle_job(&self, delivery: Delivery, message: JobMessage, interrupt: CancellationToken) {
        let job_id = message.job_id.clone();
        let attempt = delivery.attempt;
        let spec = match self.load_spec(&message).await {
            Ok(spec) => spec,
            Err(SpecProblem::Transient(reason)) => return self.hand_back(delivery, &reason).await,
            Err(SpecProblem::Invalid(reason)) => {
                let mut status = JobStatus::queued(&job_id, None, 0);
                status.attempt = attempt;
                let error = JobError { code: JobErrorCode::InvalidSpec.as_str().into(), message: reason };
                return self.conclude(delivery, finish(status, JobOutcome::Failed(error))).await;
            }
        };
        let total = spec.images.len() as u32;
        let started = match self.env.status.begin(&job_id, spec.project_id.as_deref(), attempt, total).await {
            Ok(BeginOutcome::Started(status)) => status,
            Ok(BeginOutcome::AlreadyFinal(status)) => {
                info!(state = status.state.as_str(), "job already ended; re-publishing its completion");
                return self.publish_and_ack(delivery, &status).await;
            }
            Err(err) => return self.hand_back(delivery, &err.to_string()).await,
        };
        info!(images = total, "job started");

        let run = run_job(&self.env, &job_id, &spec, &interrupt);
        let result = with_lease(&delivery, run).await;
        match result {
            Ok((outcome, progress)) => {
                let mut status = finish(started, outcome);
                status.progress = progress;
                self.conclude(delivery, status).await;
            }
            Err(Interrupted::Shutdown) => self.hand_back(delivery, "worker shutting down").await,
            Err(Interrupted::Transient(reason)) if attempt >= self.max_deliveries => {
                let error = JobError {
                    code: JobErrorCode::TooManyAttempts.as_str().into(),
                    message: format!("gave up after {attempt} attempts; last problem: {reason}"),
                };
                self.conclude(delivery, finish(started, JobOutcome::Failed(error))).await;
            }
            Err(Interrupted::Transient(reason)) => {
                // A short pause so a broken backend is not hammered by instant redeliveries.
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt.min(10)))).await;
                self.hand_back(delivery, &reason).await;
            }
        }
    }

    /// The job's spec: inline, or fetched from the store (claim check), validated.
    async fn load_spec(&self, message: &JobMessage) -> Result<JobSpec, SpecProblem> {
        let spec = match (&message.spec, &message.spec_ref) {
            (Some(spec), _) => spec.clone(),
            (None, Some(location)) => {
                let bytes = zipfleet_shared::store::read_small(self.env.store.as_ref(), &location.key, MAX_SPEC_BYTES).await.map_err(|err| {
                    if err.is_transient() {
                        SpecProblem::Transient(err.to_string())
                    } else {
                        SpecProblem::Invalid(format!("the job's spec could not be read: {err}"))
                    }
                })?;
                JobSpec::parse_unvalidated(&bytes).map_err(|err| SpecProblem::Invalid(err.to_string()))?
            }
            (None, None) => return Err(SpecProblem::Invalid("the message carries no spec".into())),
        };
        spec.validate(&self.spec_limits).map_err(|err| SpecProblem::Invalid(err.to_string()))?;
        Ok(spec)
    }

    /// Write the final status, publish it, acknowledge the delivery.
    async fn conclude(&self, delivery: Delivery, status: JobStatus) {
        let stored = match self.env.status.finish(&status).await {
            Ok(stored) => stored,
            Err(err) => return self.hand_back(delivery, &format!("could not store the final status: {err}")).await,
        };
        info!(state = stored.state.as_str(), "job finished");
        self.publish_and_ack(delivery, &stored).await;
    }

    async fn publish_and_ack(&self, delivery: Delivery, status: &JobStatus) {
        let body = serde_json::to_vec(status).expect("a status always serializes");
        if let Err(err) = self.broker.publish_completion(&status.job_id, &body).await {
            return self.hand_back(delivery, &format!("could not publish the completion: {err}")).await;
        }
        if let Err(err) = delivery.ack().await {
            // The broker will redeliver; the redelivery finds the final status.
            warn!(%err, "could not acknowledge the job");
        }
    }

    async fn hand_back(&self, delivery: Delivery, reason: &str) {
        warn!(reason, "handing the job back to the queue");
        if let Err(err) = delivery.hand_back().await {
            warn!(%err, "could not hand the job back; the broker will redeliver it");
        }
    }
}

enum SpecProblem {
    Transient(String),
    Invalid(String),
}

/// The final status document for an outcome.
fn finish(mut status: JobStatus, outcome: JobOutcome) -> JobStatus {
    status.finished_at = Some(now());
    match outcome {
        JobOutcome::Succeeded(result) => {
            status.state = JobState::Succeeded;
            status.result = Some(result);
        }
        JobOutcome::Failed(error) => {
            status.state = JobState::Failed;
            status.error = Some(error);
        }
        JobOutcome::Cancelled => {
            status.state = JobState::Cancelled;
            status.error = Some(cancelled_error());
        }
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
