//! Which lane a worker with a free slot takes its next job from, and how
//! often an idle worker looks.
//!
//! A [`LaneOrder`] says which lanes to try first ([`FairOrder`]: the
//! fair-share ledger's order; or [`Sweep`]'s rotation) and whether anything is waiting at all;
//! [`lanes_to_try`] turns its answer into one look's list of lanes, adding
//! every lane the order left out when a sweep is due; [`IdlePacing`] decides
//! when an idle worker looks again. The worker loop (`consumer.rs`) does the
//! taking: one message from the first lane that has one, and only with a free
//! slot for it.

use async_trait::async_trait;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::debug;
use zipfleet_shared::broker::memory::MemoryBroker;
use zipfleet_shared::broker::{Broker, Lane};
use zipfleet_shared::status_store::StatusStore;

/// How often an idle worker asks [`LaneOrder::work_waiting`]. That question
/// is meant to be cheap (one status-store read), and its answer is how known
/// work reaches an idle worker: 250 ms bounds that pick-up latency at 4
/// questions a second.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// How often an idle worker asks every lane of the broker, whatever the
/// order says: messages the order does not know about (redriven dead letters
/// on lane 0, messages posted straight to the broker, a status store that lost
/// its ledger) are found within this. Each sweep costs one request per lane,
/// so with the default 8 lanes an idle worker makes 4 broker requests a second.
pub const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// How long one take waits for a message: not at all. A look asks several
/// lanes in turn and must not sit on an empty one while another has work,
/// and a take is never interrupted (an SQS receive dropped midway may have
/// taken a message), so a waiting take would also delay shutdown. Waiting is
/// [`IdlePacing`]'s business.
pub const TAKE_PATIENCE: Duration = Duration::ZERO;

/// The order in which a worker with a free slot tries the lanes.
#[async_trait]
pub trait LaneOrder: Send + Sync {
    /// Lanes to try, most preferred first, of a broker with `lanes` lanes.
    /// Lanes it leaves out are still swept every [`SWEEP_EVERY`]; lanes out
    /// of range and repeats are ignored.
    async fn order(&self, lanes: u16) -> Vec<Lane>;
    /// A cheap "is anything waiting?", asked every [`POLL_EVERY`] while idle;
    /// `true` makes the worker look at once. A wrong `true` costs a look
    /// (and is trusted less and less until it turns `false`); a wrong `false`
    /// delays work until the next sweep.
    async fn work_waiting(&self) -> bool;
}

/// Every lane in turn, starting one further each look, so that no lane is
/// always asked last. The order until the fair-share ledger's.
///
/// It knows nothing waiting (only sweeps, and continuous taking while busy,
/// find work) — except over the in-process broker ([`Sweep::watching`]),
/// whose depth is a free read: there it answers "anything waiting?" from
/// the depth, so `zipfleet run` and the embedded tests pick a job up within
/// [`POLL_EVERY`]. On a real broker a depth read is a request per lane,
/// dearer than the sweep it would save.
#[derive(Default)]
pub struct Sweep {
    next_start: AtomicU16,
    depth_of: Option<Arc<dyn Broker>>,
}

impl std::fmt::Debug for Sweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweep")
            .field("watching", &self.depth_of.as_ref().map(|b| b.kind()))
            .finish()
    }
}

impl Sweep {
    /// The order for `broker`: watching its depth where that is free (the
    /// in-process broker), else knowing nothing waiting.
    pub fn for_broker(broker: &Arc<dyn Broker>) -> Self {
        if broker.kind() == MemoryBroker::KIND {
            Self::watching(broker.clone())
        } else {
            Self::default()
        }
    }

    /// Answer "anything waiting?" from `broker`'s depth (meant for brokers
    /// whose depth costs no request).
    pub fn watching(broker: Arc<dyn Broker>) -> Self {
        Self {
            next_start: AtomicU16::new(0),
            depth_of: Some(broker),
        }
    }
}

#[async_trait]
impl LaneOrder for Sweep {
    async fn order(&self, lanes: u16) -> Vec<Lane> {
        let lanes = lanes.max(1);
        let start = self.next_start.fetch_add(1, Ordering::Relaxed) % lanes;
        (start..lanes).chain(0..start).map(Lane).collect()
    }

    async fn work_waiting(&self) -> bool {
        match &self.depth_of {
            Some(broker) => broker
                .queue_depth()
                .await
                .is_ok_and(|depth| depth.ready > 0),
            None => false,
        }
    }
}

/// The fair-share order: the lanes of the tenants with jobs waiting, the
/// tenant with the least work in flight first (then the longest wait), as
/// the status store's ledger has them (`FairLedger::dispatch_order`). A
/// ledger that cannot answer leaves the worker to [`Sweep`]: fairness waits,
/// jobs do not (the broker, not the ledger, is the record of every job).
pub struct FairOrder {
    status: Arc<dyn StatusStore>,
    fallback: Sweep,
}

impl std::fmt::Debug for FairOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairOrder")
            .field("status", &self.status.kind())
            .field("fallback", &self.fallback)
            .finish()
    }
}

impl FairOrder {
    pub fn new(status: Arc<dyn StatusStore>, broker: &Arc<dyn Broker>) -> Self {
        Self {
            status,
            fallback: Sweep::for_broker(broker),
        }
    }
}

#[async_trait]
impl LaneOrder for FairOrder {
    async fn order(&self, lanes: u16) -> Vec<Lane> {
        match self.status.dispatch_order(lanes).await {
            Ok(order) => order.lanes[..order.expected]
                .iter()
                .map(|lane| Lane(*lane))
                .collect(),
            Err(err) => {
                debug!(%err, "no fair-share order; sweeping the lanes");
                self.fallback.order(lanes).await
            }
        }
    }

    async fn work_waiting(&self) -> bool {
        match self.status.work_waiting().await {
            Ok(true) => true,
            // The ledger knows nothing waiting, or cannot say: what the
            // broker shows for free (the in-process one) still counts.
            Ok(false) | Err(_) => self.fallback.work_waiting().await,
        }
    }
}

/// One look's lanes: `order`'s lanes (each once, those that exist), then —
/// when `sweep` — every lane it left out. The flag says whether the look
/// asks every lane (and so counts as a sweep).
pub fn lanes_to_try(order: Vec<Lane>, lanes: u16, sweep: bool) -> (Vec<Lane>, bool) {
    let mut listed = vec![false; usize::from(lanes)];
    let mut look = Vec::with_capacity(usize::from(lanes));
    for lane in order {
        if let Some(seen) = listed.get_mut(usize::from(lane.0)) {
            if !*seen {
                *seen = true;
                look.push(lane);
            }
        }
    }
    if sweep {
        look.extend(Lane::all(lanes).filter(|lane| !listed[usize::from(lane.0)]));
    }
    let all = look.len() == usize::from(lanes);
    (look, all)
}

/// When an idle worker looks again: at every sweep, and whenever
/// [`LaneOrder::work_waiting`] says so — unless its last "yes" led to a look
/// that found nothing, after which it is trusted again only after a gap that
/// doubles (up to [`SWEEP_EVERY`]) until it says "no" or a look finds work. A
/// stale "yes" (a ledger that lags the broker) thus costs at most one look
/// per sweep interval, not four a second.
#[derive(Debug)]
pub struct IdlePacing {
    next_sweep: Instant,
    distrust_gap: Duration,
    trust_waiting_from: Instant,
}

impl IdlePacing {
    /// A worker that has not looked yet: a sweep is due at once.
    pub fn new(now: Instant) -> Self {
        Self {
            next_sweep: now,
            distrust_gap: POLL_EVERY,
            trust_waiting_from: now,
        }
    }

    pub fn sweep_due(&self, now: Instant) -> bool {
        now >= self.next_sweep
    }

    /// Whether to ask [`LaneOrder::work_waiting`] now.
    pub fn trusts_waiting(&self, now: Instant) -> bool {
        now >= self.trust_waiting_from
    }

    /// When an idle worker wakes next: the next poll, or the sweep if sooner.
    pub fn next_wake(&self, now: Instant) -> Instant {
        (now + POLL_EVERY).min(self.next_sweep)
    }

    /// A look found a message.
    pub fn found_work(&mut self, now: Instant, swept: bool) {
        if swept {
            self.next_sweep = now + SWEEP_EVERY;
        }
        self.distrust_gap = POLL_EVERY;
        self.trust_waiting_from = now;
    }

    /// A look found nothing. `swept`: it asked every lane; `asked_by_waiting`:
    /// it was made because [`LaneOrder::work_waiting`] said so.
    pub fn found_nothing(&mut self, now: Instant, swept: bool, asked_by_waiting: bool) {
        if swept {
            self.next_sweep = now + SWEEP_EVERY;
        }
        if asked_by_waiting {
            self.trust_waiting_from = now + self.distrust_gap;
            self.distrust_gap = (self.distrust_gap * 2).min(SWEEP_EVERY);
        }
    }

    /// [`LaneOrder::work_waiting`] said "no": its next "yes" is news.
    pub fn nothing_waiting(&mut self) {
        self.distrust_gap = POLL_EVERY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sweep_rotates_through_every_lane() {
        let sweep = Sweep::default();
        assert_eq!(sweep.order(3).await, [Lane(0), Lane(1), Lane(2)]);
        assert_eq!(sweep.order(3).await, [Lane(1), Lane(2), Lane(0)]);
        assert_eq!(sweep.order(3).await, [Lane(2), Lane(0), Lane(1)]);
        assert_eq!(sweep.order(1).await, [Lane(0)]);
        assert!(!sweep.work_waiting().await);
    }

    #[tokio::test]
    async fn over_the_in_process_broker_sweep_knows_what_waits() {
        let memory = MemoryBroker::new(3);
        let broker: Arc<dyn Broker> = Arc::new(memory.clone());
        let sweep = Sweep::for_broker(&broker);
        assert!(!sweep.work_waiting().await);
        memory.publish_job(Lane(5), "j", b"{}").await.unwrap();
        assert!(sweep.work_waiting().await);
    }

    #[test]
    fn a_look_tries_the_order_then_on_a_sweep_the_rest() {
        let order = vec![Lane(3), Lane(9), Lane(3), Lane(1)];
        assert_eq!(
            lanes_to_try(order.clone(), 4, false),
            (vec![Lane(3), Lane(1)], false)
        );
        assert_eq!(
            lanes_to_try(order, 4, true),
            (vec![Lane(3), Lane(1), Lane(0), Lane(2)], true)
        );
        assert_eq!(
            lanes_to_try(vec![Lane(1), Lane(0)], 2, false),
            (vec![Lane(1), Lane(0)], true),
            "an order of every lane is a sweep"
        );
    }

    #[test]
    fn idle_pacing_sweeps_every_interval_and_distrusts_a_stale_yes() {
        let start = Instant::now();
        let mut pacing = IdlePacing::new(start);
        assert!(pacing.sweep_due(start));
        pacing.found_nothing(start, true, false);
        assert!(!pacing.sweep_due(start + POLL_EVERY));
        assert!(pacing.sweep_due(start + SWEEP_EVERY));
        assert_eq!(pacing.next_wake(start), start + POLL_EVERY);
        assert_eq!(
            pacing.next_wake(start + SWEEP_EVERY - Duration::from_millis(10)),
            start + SWEEP_EVERY
        );
        assert!(
            pacing.trusts_waiting(start),
            "a sweep says nothing of the ledger"
        );

        // "Yes", yet nothing found: trusted again after 250 ms, then 500 ms, …
        let mut now = start;
        let mut gaps = Vec::new();
        for _ in 0..5 {
            pacing.found_nothing(now, false, true);
            let from = pacing.trust_waiting_from;
            gaps.push(from - now);
            now = from;
        }
        assert_eq!(
            gaps,
            [250, 500, 1000, 2000, 2000].map(Duration::from_millis)
        );
        pacing.nothing_waiting();
        pacing.found_nothing(now, false, true);
        assert_eq!(pacing.trust_waiting_from - now, POLL_EVERY, "a no resets");
        pacing.found_work(now, false);
        assert!(pacing.trusts_waiting(now));
    }
}
