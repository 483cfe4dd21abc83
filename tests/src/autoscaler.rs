//! Playing KEDA (and the HPA under it) against the real broker, with real
//! worker processes: what `infra/k8s/overlays/*/keda.yaml` would do to the
//! fleet, minus Kubernetes.
//!
//! Every [`Autoscaler::tick`] (the test calls it once a second):
//!
//! - reads the metric the ScaledObject names, summed over every lane of the
//!   jobs queue (as the overlays' triggers do): RabbitMQ's `messages` from
//!   the management HTTP API (ready + unacknowledged, the `rabbitmq` trigger
//!   with `protocol: http`, `mode: QueueLength`), or SQS's
//!   `ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible`
//!   (`scaleOnInFlight: "true"`);
//! - at zero replicas, KEDA's activation: 1 replica once the metric is above
//!   `activation`, else stay at 0;
//! - above zero, the HPA: recommendation = ceil(metric ÷ target) within
//!   [1, max]; scale-down stabilisation (the highest recommendation of the
//!   last `stabilisation`), no scale-up stabilisation, and the scale-up
//!   policies of the overlays (100% or 4 pods per 15 s, whichever is more);
//! - KEDA's deactivation: to 0 once the metric has been at or below
//!   `activation` for `cooldown`.
//!
//! Scaling out starts worker processes; scaling in SIGTERMs them. Which pod a
//! ReplicaSet removes is not up to the workers, so the harness removes the
//! busiest worker first (most jobs running, per its `/metrics`; the youngest
//! among equals): the worst case, which makes scale-in exercise the
//! shutdown grace and the hand-back of unfinished jobs.

use crate::fleet::Fleet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the scaling metric is read.
pub enum Metric {
    /// The management API at `base` (e.g. `http://127.0.0.1:15672`), guest/guest, vhost `/`.
    RabbitMq {
        base: String,
        /// Every lane's queue.
        queues: Vec<String>,
        client: reqwest::Client,
    },
    Sqs {
        client: aws_sdk_sqs::Client,
        /// Every lane's queue URL.
        queue_urls: Vec<String>,
    },
}

impl Metric {
    /// The metric for a fleet's jobs queue (every lane) on its broker.
    pub async fn for_fleet(fleet: &Fleet) -> Metric {
        let queues = fleet.lane_queues();
        if fleet.config.broker.scheme() == "sqs" {
            let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let client = aws_sdk_sqs::Client::new(&shared);
            let mut queue_urls = Vec::new();
            for queue in &queues {
                queue_urls.push(
                    client
                        .get_queue_url()
                        .queue_name(queue)
                        .send()
                        .await
                        .expect("every lane exists")
                        .queue_url
                        .unwrap(),
                );
            }
            Metric::Sqs { client, queue_urls }
        } else {
            let base = std::env::var("ZIPFLEET_TEST_RABBITMQ_MANAGEMENT")
                .unwrap_or_else(|_| "http://127.0.0.1:15672".into());
            Metric::RabbitMq {
                base,
                queues,
                client: reqwest::Client::new(),
            }
        }
    }

    /// The current value (the sum over lanes), or why it could not be read.
    pub async fn read(&self) -> Result<u64, String> {
        let mut sum = 0;
        match self {
            Metric::RabbitMq {
                base,
                queues,
                client,
            } => {
                for queue in queues {
                    sum += Self::read_rabbitmq(base, queue, client).await?;
                }
            }
            Metric::Sqs { client, queue_urls } => {
                for queue_url in queue_urls {
                    sum += Self::read_sqs(client, queue_url).await?;
                }
            }
        }
        Ok(sum)
    }

    /// One queue's ready + unacknowledged messages, from the management API.
    async fn read_rabbitmq(
        base: &str,
        queue: &str,
        client: &reqwest::Client,
    ) -> Result<u64, String> {
        let url = format!("{base}/api/queues/%2f/{queue}");
        let response = client
            .get(&url)
            .basic_auth("guest", Some("guest"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|err| format!("RabbitMQ's management API does not answer at {url} ({err}); `rabbitmq-plugins enable rabbitmq_management` (infra/services.sh does)"))?;
        if response.status() != 200 {
            return Err(format!("GET {url}: {}", response.status()));
        }
        let queue: serde_json::Value = response
            .json()
            .await
            .map_err(|err| format!("queue JSON: {err}"))?;
        // Right after the queue is declared the counters may be absent: nothing counted yet.
        let count = |field: &str| {
            queue
                .get(field)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        Ok(count("messages_ready") + count("messages_unacknowledged"))
    }

    /// One queue's visible + not visible messages.
    async fn read_sqs(client: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64, String> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let answer = client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|err| format!("GetQueueAttributes: {err}"))?;
        let attributes = answer.attributes.unwrap_or_default();
        let count = |name: A| {
            attributes
                .get(&name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(count(A::ApproximateNumberOfMessages) + count(A::ApproximateNumberOfMessagesNotVisible))
    }

    /// Read once, allowing the service a few seconds; fails the test loudly if it never answers.
    pub async fn read_now(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.read().await {
                Ok(value) => return value,
                Err(err) if Instant::now() > deadline => {
                    panic!("the scaling metric cannot be read: {err}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}

/// The ScaledObject's numbers (test values where the real ones are minutes).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Messages per replica (`value` / `queueLength`).
    pub target: u64,
    /// `activationValue` / `activationQueueLength`.
    pub activation: u64,
    pub max_replicas: usize,
    /// `cooldownPeriod`: how long the metric stays at or below activation before 1 → 0.
    pub cooldown: Duration,
    /// The HPA's scale-down `stabilizationWindowSeconds`.
    pub stabilisation: Duration,
}

/// One change the harness made, for the test's report.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Duration,
    pub metric: u64,
    pub from: usize,
    pub to: usize,
    /// Jobs running in the workers SIGTERM'd by this change.
    pub busy_stopped: i64,
}

struct Replica {
    index: usize,
    started: Instant,
    log: PathBuf,
}

pub struct Autoscaler {
    pub rule: Rule,
    metric: Metric,
    /// Extra environment of every worker started (e.g. a short shutdown grace).
    worker_env: Vec<(String, String)>,
    logs: tempfile::TempDir,
    begun: Instant,
    /// Workers counted as replicas (started, not yet told to stop).
    replicas: Vec<Replica>,
    /// Workers SIGTERM'd and not yet seen exiting: (index, when signalled).
    stopping: Vec<(usize, Instant)>,
    /// Every worker log, for hand-back counts.
    all_logs: Vec<PathBuf>,
    /// HPA recommendations within the stabilisation window.
    recommendations: Vec<(Instant, usize)>,
    /// Scale-up events within the policies' 15 s period: (when, pods added).
    scale_ups: Vec<(Instant, usize)>,
    last_active: Option<Instant>,
    /// Since when the metric cannot be read.
    failing_since: Option<Instant>,
    pub events: Vec<Event>,
    /// The highest replica count reached.
    pub peak: usize,
    /// Longest time a SIGTERM'd worker took to exit.
    pub longest_exit: Duration,
    pub started_workers: usize,
}

/// The overlays' scale-up policies: 100% or 4 pods per 15 s, `selectPolicy: Max`.
const SCALE_UP_PERIOD: Duration = Duration::from_secs(15);

impl Autoscaler {
    pub fn new(rule: Rule, metric: Metric, worker_env: &[(&str, &str)]) -> Self {
        Self {
            rule,
            metric,
            worker_env: worker_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            logs: tempfile::tempdir().expect("log dir"),
            begun: Instant::now(),
            replicas: Vec::new(),
            stopping: Vec::new(),
            all_logs: Vec::new(),
            recommendations: Vec::new(),
            scale_ups: Vec::new(),
            last_active: None,
            failing_since: None,
            events: Vec::new(),
            peak: 0,
            longest_exit: Duration::ZERO,
            started_workers: 0,
        }
    }

    /// Replicas the autoscaler currently wants running.
    pub fn replicas(&self) -> usize {
        self.replicas.len()
    }

    /// Whether no worker process is left at all (none running, none stopping).
    pub fn fleet_is_gone(&mut self, fleet: &mut Fleet) -> bool {
        self.reap(fleet);
        self.replicas.is_empty() && self.stopping.is_empty()
    }

    /// Read the metric, decide, and start or stop workers. Returns the metric
    /// read (0 when it could not be read: then nothing changes).
    pub async fn tick(&mut self, fleet: &mut Fleet) -> u64 {
        self.reap(fleet);
        let now = Instant::now();
        let metric = match self.metric.read().await {
            Ok(metric) => {
                self.failing_since = None;
                metric
            }
            Err(err) => {
                // KEDA and the HPA keep the current scale while a scaler errs
                // (e.g. RabbitMQ restarting, its management API with it).
                let since = *self.failing_since.get_or_insert(now);
                assert!(
                    now.duration_since(since) < Duration::from_secs(60),
                    "the scaling metric has failed for a minute: {err}"
                );
                eprintln!(
                    "autoscaler: metric unavailable, keeping {} replicas: {err}",
                    self.replicas.len()
                );
                return 0;
            }
        };
        if metric > self.rule.activation {
            self.last_active = Some(now);
        }
        let current = self.replicas.len();
        let desired = if current == 0 {
            // KEDA's activation: the HPA does not act at zero replicas.
            usize::from(metric > self.rule.activation)
        } else if metric <= self.rule.activation
            && self
                .last_active
                .is_none_or(|at| now.duration_since(at) >= self.rule.cooldown)
        {
            // KEDA's deactivation after the cooldown.
            0
        } else {
            self.hpa(now, current, metric)
        };
        if desired != current {
            let busy_stopped = self.scale(fleet, current, desired).await;
            self.events.push(Event {
                at: now.duration_since(self.begun),
                metric,
                from: current,
                to: desired,
                busy_stopped,
            });
        }
        self.peak = self.peak.max(self.replicas.len());
        metric
    }

    /// The HPA's desired replicas, with its stabilisation and scale-up policies.
    fn hpa(&mut self, now: Instant, current: usize, metric: u64) -> usize {
        let recommendation =
            (metric.div_ceil(self.rule.target) as usize).clamp(1, self.rule.max_replicas);
        self.recommendations.push((now, recommendation));
        let window = self.rule.stabilisation;
        self.recommendations
            .retain(|(at, _)| now.duration_since(*at) <= window);
        // Up: no window (the latest recommendation); down: the highest of the window.
        let up = recommendation;
        let down = self
            .recommendations
            .iter()
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(recommendation);
        let stabilised = if current < up {
            up
        } else if current > down {
            down
        } else {
            current
        };
        if stabilised <= current {
            return stabilised;
        }
        self.scale_ups
            .retain(|(at, _)| now.duration_since(*at) < SCALE_UP_PERIOD);
        let added: usize = self.scale_ups.iter().map(|(_, n)| n).sum();
        let base = current.saturating_sub(added);
        let limit = (base * 2).max(base + 4);
        stabilised.min(limit).min(self.rule.max_replicas)
    }

    async fn scale(&mut self, fleet: &mut Fleet, current: usize, desired: usize) -> i64 {
        let now = Instant::now();
        if desired > current {
            self.scale_ups.push((now, desired - current));
            for _ in current..desired {
                let log = self
                    .logs
                    .path()
                    .join(format!("worker-{}.log", self.started_workers));
                let env: Vec<(&str, &str)> = self
                    .worker_env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                // At `info` the job span (with its job id) is recorded, so a hand-back line names its job.
                let index = fleet.add_worker_with(Some(&log), Some("info"), &env);
                self.started_workers += 1;
                self.all_logs.push(log.clone());
                self.replicas.push(Replica {
                    index,
                    started: now,
                    log,
                });
            }
            return 0;
        }
        // Busiest first, then youngest.
        let mut load = Vec::new();
        for replica in &self.replicas {
            load.push(jobs_running(fleet.worker_endpoint(replica.index)).await);
        }
        let mut order: Vec<usize> = (0..self.replicas.len()).collect();
        order.sort_by(|&a, &b| {
            load[b]
                .cmp(&load[a])
                .then(self.replicas[b].started.cmp(&self.replicas[a].started))
        });
        let victims: Vec<usize> = order.into_iter().take(current - desired).collect();
        let busy: i64 = victims.iter().map(|&v| load[v].max(0)).sum();
        let mut keep = Vec::new();
        for (position, replica) in std::mem::take(&mut self.replicas).into_iter().enumerate() {
            if victims.contains(&position) {
                fleet.signal_worker(replica.index);
                self.stopping.push((replica.index, now));
            } else {
                keep.push(replica);
            }
        }
        self.replicas = keep;
        busy
    }

    /// Notice SIGTERM'd workers that exited; a replica that died by itself fails the test.
    fn reap(&mut self, fleet: &mut Fleet) {
        let mut still = Vec::new();
        for (index, signalled) in std::mem::take(&mut self.stopping) {
            if fleet.worker_exited(index) {
                self.longest_exit = self.longest_exit.max(signalled.elapsed());
            } else {
                still.push((index, signalled));
            }
        }
        self.stopping = still;
        for replica in &self.replicas {
            assert!(
                !fleet.worker_exited(replica.index),
                "worker {} exited without being told to:\n{}",
                replica.index,
                std::fs::read_to_string(&replica.log).unwrap_or_default()
            );
        }
    }

    /// How many times a worker logged handing `job_id` back to the queue.
    pub fn hand_backs(&self, job_id: &str) -> usize {
        self.all_logs
            .iter()
            .map(|log| {
                std::fs::read_to_string(log)
                    .unwrap_or_default()
                    .lines()
                    .filter(|line| line.contains("handing the job back") && line.contains(job_id))
                    .count()
            })
            .sum()
    }

    /// All worker logs, concatenated (for failure messages).
    pub fn logs(&self) -> String {
        self.all_logs
            .iter()
            .map(|log| std::fs::read_to_string(log).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `zipfleet_worker_jobs_running` from a worker's `/metrics` (0 if it does not answer yet).
pub async fn jobs_running(endpoint: &str) -> i64 {
    let Ok(response) = reqwest::Client::new()
        .get(format!("{endpoint}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
    else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .find_map(|line| {
            line.strip_prefix("zipfleet_worker_jobs_running ")
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}
