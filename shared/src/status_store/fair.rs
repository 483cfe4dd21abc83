//! The fair-share policy as pure functions over the ledger's numbers, so
//! the Redis and in-memory stores decide the same way (and unit tests can
//! check the policy without a store).
//!
//! The policy (contract, "Fair share"): whenever a worker slot frees, the
//! next job comes from the tenant with the least work in flight; between
//! tenants with as much in flight, from the one that has waited longest for
//! its turn — since its last job started, or since its oldest queued job was
//! accepted if that is later. (Waiting "since its oldest job" alone would let
//! a tenant with an old backlog win every tie, which is every decision on a
//! fleet of one slot: first come, first served again.) Each waiting job's
//! message sits on one lane of the jobs queue (ARCHITECTURE.md, "Fair
//! share"), so the policy is applied by the order in which a worker tries
//! the lanes: the lane of the chosen tenant's oldest job first.
//!
//! A decision **claims** its slot: the chosen tenant counts one more job in
//! flight until the worker starts the job it took (or finds none), so two
//! workers deciding at the same moment do not both pick the same tenant.

use std::time::Duration;

/// Fair-share settings that apply when a job is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FairLimits {
    /// Lanes of the jobs queue (`ZIPFLEET_FAIR_LANES`).
    pub lanes: u16,
    /// Jobs one tenant may have queued at once (`ZIPFLEET_MAX_QUEUED_PER_TENANT`).
    pub max_queued_per_tenant: u32,
}

/// One tenant's jobs as the ledger sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantLoad {
    pub tenant: String,
    /// Jobs accepted and not yet started.
    pub queued: u32,
    /// Jobs in flight: running (their workers renewing their leases), and
    /// slots claimed for it by workers about to start one.
    pub running: u32,
    /// How long its oldest queued job has waited (zero when none waits).
    pub oldest_wait: Duration,
    /// How long it has waited for its turn: since its last job started, or
    /// since its oldest queued job was accepted if that is later.
    pub turn_wait: Duration,
    /// The lane its oldest queued job's message is on.
    pub oldest_lane: Option<u16>,
}

/// A slot a worker's decision holds for a tenant until the worker starts a
/// job (or finds none): counted as that tenant's work in flight meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub tenant: String,
    /// Unique per decision.
    pub id: String,
}

/// How long a claim counts if its worker never settles it (it died).
pub const CLAIM_FOR: Duration = Duration::from_secs(10);

/// The lanes a worker with a free slot tries, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchOrder {
    /// Every lane exactly once.
    pub lanes: Vec<u16>,
    /// The first `expected` lanes hold jobs the ledger knows wait there; the
    /// rest are only swept (jobs the ledger does not know: redriven dead
    /// letters, messages posted straight to the broker).
    pub expected: usize,
    /// The slot claimed for the chosen tenant (settle it when the job
    /// starts, or release it if none is found).
    pub claim: Option<Claim>,
}

impl DispatchOrder {
    /// Lanes in plain order, none expected: what a worker sweeps when the
    /// ledger cannot be asked.
    pub fn sweep(lanes: u16) -> Self {
        Self {
            lanes: (0..lanes.max(1)).collect(),
            expected: 0,
            claim: None,
        }
    }
}

/// The order of preference between tenants with jobs queued: least in
/// flight, then the longest wait for a turn, then the name (a stable order).
fn before(a: &TenantLoad, b: &TenantLoad) -> std::cmp::Ordering {
    a.running
        .cmp(&b.running)
        .then(b.turn_wait.cmp(&a.turn_wait))
        .then(a.tenant.cmp(&b.tenant))
}

/// The tenant whose job should start next, if any waits.
pub fn next_tenant(loads: &[TenantLoad]) -> Option<&TenantLoad> {
    loads
        .iter()
        .filter(|load| load.queued > 0 && load.oldest_lane.is_some())
        .min_by(|a, b| before(a, b))
}

/// The lane order for these tenants: the lanes of waiting tenants' oldest
/// jobs, best tenant first (least running, then longest wait), then every
/// other lane.
pub fn dispatch_order(loads: &[TenantLoad], lanes: u16) -> DispatchOrder {
    let lanes = lanes.max(1);
    let mut waiting: Vec<&TenantLoad> = loads
        .iter()
        .filter(|load| load.queued > 0 && load.oldest_lane.is_some())
        .collect();
    waiting.sort_by(|a, b| before(a, b));
    let mut order: Vec<u16> = Vec::with_capacity(usize::from(lanes));
    for lane in waiting.iter().filter_map(|load| load.oldest_lane) {
        if lane < lanes && !order.contains(&lane) {
            order.push(lane);
        }
    }
    let expected = order.len();
    let rest: Vec<u16> = (0..lanes).filter(|lane| !order.contains(lane)).collect();
    order.extend(rest);
    DispatchOrder {
        lanes: order,
        expected,
        claim: None,
    }
}

/// The lane for a tenant's jobs when it has none: lanes 1.. are for tenants
/// (lane 0 is the jobs queue itself, where the ledger's unknowns land); a
/// lane no tenant holds if there is one, else the one with the fewest
/// waiting jobs. `held`: (lane, jobs waiting on it) for every lane a
/// tenant holds.
pub fn choose_lane(held: &[(u16, u32)], lanes: u16) -> u16 {
    if lanes <= 1 {
        return 0;
    }
    let mut waiting_on = vec![None::<u32>; usize::from(lanes)];
    for &(lane, waiting) in held {
        if let Some(slot) = waiting_on.get_mut(usize::from(lane)) {
            *slot = Some(slot.unwrap_or(0) + waiting);
        }
    }
    (1..lanes)
        .min_by_key(|&lane| match waiting_on[usize::from(lane)] {
            None => (0, 0, lane),
            Some(waiting) => (1, waiting, lane),
        })
        .unwrap_or(1)
}

/// How fast the fleet works through jobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Typical seconds a job runs (median of the recent ones).
    pub job_seconds: f64,
    /// Worker slots seen lately (at least 1).
    pub slots: u32,
}

/// A job's run time assumed before the fleet has finished any.
pub const DEFAULT_JOB_SECONDS: f64 = 10.0;
/// Recent run times kept for [`Pace::job_seconds`].
pub const RECENT_RUNS: usize = 50;

impl Pace {
    /// From recent run times (seconds, any order) and the slots seen.
    pub fn from_runs(mut runs: Vec<f64>, slots: u32) -> Self {
        runs.retain(|run| run.is_finite() && *run >= 0.0);
        runs.sort_by(f64::total_cmp);
        let job_seconds = match runs.len() {
            0 => DEFAULT_JOB_SECONDS,
            n if n % 2 == 1 => runs[n / 2],
            n => (runs[n / 2 - 1] + runs[n / 2]) / 2.0,
        };
        Self {
            job_seconds,
            slots: slots.max(1),
        }
    }

    /// Seconds until the job with `ahead` jobs before it starts: with every
    /// slot busy, a slot frees every `job_seconds / slots` on average, the
    /// first after half of that.
    pub fn wait_seconds(&self, ahead: u32) -> u32 {
        let wait = (f64::from(ahead) + 0.5) * self.job_seconds / f64::from(self.slots);
        wait.round().clamp(0.0, f64::from(u32::MAX)) as u32
    }

    /// When a tenant over its quota may try again: about when the next
    /// slot frees (at least a second, at most a minute).
    pub fn retry_after(&self) -> Duration {
        let seconds = (self.job_seconds / f64::from(self.slots)).ceil();
        Duration::from_secs(seconds.clamp(1.0, 60.0) as u64)
    }
}

/// How many jobs start before the `position`-th (0-based) queued job of
/// `tenant` if no other job arrives: its own earlier jobs, and for every
/// other tenant the jobs it starts before `tenant` has `position` more in
/// flight than now (one more if it has waited longer for its turn, which
/// wins ties).
/// Jobs are assumed to take about as long as each other.
pub fn jobs_ahead(loads: &[TenantLoad], tenant: &str, position: u32) -> u32 {
    let Some(own) = loads.iter().find(|load| load.tenant == tenant) else {
        return position;
    };
    let level = i64::from(own.running) + i64::from(position);
    let others: i64 = loads
        .iter()
        .filter(|load| load.tenant != tenant)
        .map(|load| {
            let wins_ties = i64::from(load.turn_wait > own.turn_wait);
            (level - i64::from(load.running) + wins_ties).clamp(0, i64::from(load.queued))
        })
        .sum();
    u32::try_from(i64::from(position) + others).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(tenant: &str, queued: u32, running: u32, waited: u64, lane: u16) -> TenantLoad {
        TenantLoad {
            tenant: tenant.into(),
            queued,
            running,
            oldest_wait: Duration::from_secs(waited),
            turn_wait: Duration::from_secs(waited),
            oldest_lane: (queued > 0).then_some(lane),
        }
    }

    #[test]
    fn the_tenant_with_least_in_flight_goes_first_then_the_longest_waiting() {
        // A posted 60 jobs first and runs 2; B posted 3 later and runs none.
        let loads = [load("a", 55, 2, 10, 1), load("b", 3, 0, 3, 2)];
        let order = dispatch_order(&loads, 8);
        assert_eq!(order.lanes[..2], [2, 1]);
        assert_eq!(order.expected, 2);
        assert_eq!(order.lanes.len(), 8, "every lane once");
        // As much in flight: the longest wait wins the tie.
        let tied = [load("a", 55, 1, 10, 1), load("b", 2, 1, 3, 2)];
        assert_eq!(dispatch_order(&tied, 8).lanes[..2], [1, 2]);
        // Nobody waiting: a plain sweep.
        assert_eq!(dispatch_order(&[load("a", 0, 2, 0, 1)], 3).expected, 0);
        assert_eq!(next_tenant(&tied).unwrap().tenant, "a");
        assert_eq!(next_tenant(&[load("a", 0, 2, 0, 1)]), None);
    }

    #[test]
    fn a_tenant_just_served_waits_its_turn_behind_one_that_was_not() {
        // One slot: A's backlog is older, but A was served a moment ago.
        let mut a = load("a", 30, 0, 60, 1);
        a.turn_wait = Duration::from_millis(10);
        let b = load("b", 2, 0, 3, 2);
        assert_eq!(next_tenant(&[a, b]).unwrap().tenant, "b");
    }

    #[test]
    fn tenants_get_lanes_of_their_own_while_there_are_free_ones() {
        assert_eq!(choose_lane(&[], 8), 1);
        assert_eq!(choose_lane(&[(1, 50)], 8), 2);
        assert_eq!(
            choose_lane(&[(1, 50), (2, 3), (3, 7)], 4),
            2,
            "shares the lightest"
        );
        assert_eq!(choose_lane(&[], 1), 0, "one lane: the jobs queue");
    }

    #[test]
    fn jobs_ahead_follows_least_in_flight() {
        let loads = [load("a", 55, 2, 10, 1), load("b", 3, 0, 3, 2)];
        assert_eq!(jobs_ahead(&loads, "b", 0), 0, "B's first goes next");
        // B's third: B's two before it, and A gets one slot meanwhile.
        assert_eq!(jobs_ahead(&loads, "b", 2), 3);
        // A's tenth waiting job: its nine, and all of B's three.
        assert_eq!(jobs_ahead(&loads, "a", 9), 12);
        assert_eq!(jobs_ahead(&loads, "nobody", 4), 4);
    }

    #[test]
    fn waits_come_from_the_pace() {
        let pace = Pace::from_runs(vec![1.0, 3.0, 1.2, 0.8, 1.1], 2);
        assert_eq!(pace.job_seconds, 1.1);
        assert_eq!(pace.wait_seconds(0), 0);
        assert_eq!(pace.wait_seconds(38), 21);
        assert_eq!(Pace::from_runs(vec![], 0).job_seconds, DEFAULT_JOB_SECONDS);
        assert_eq!(Pace::from_runs(vec![], 0).slots, 1);
        assert_eq!(pace.retry_after(), Duration::from_secs(1));
    }
}
