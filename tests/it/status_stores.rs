//! The Redis status store held to the in-memory one's behaviour, case by
//! case: transitions, cancel, the fair-share ledger (lane order, place in
//! line, quota, hand back), erasure (tombstones), search and the worker
//! registry. Each Redis store here has a key prefix of its own.

use std::sync::Arc;
use std::time::Duration;
use zipfleet_shared::status::{JobState, JobStatus, Progress};
use zipfleet_shared::status_store::memory::MemoryStatusStore;
use zipfleet_shared::status_store::search::Cursor;
use zipfleet_shared::status_store::{
    BeginJob, BeginOutcome, CancelOutcome, CreateOutcome, FairLimits, FinishOutcome, JobQuery,
    JobSignal, NewJob, StatusStore, WorkerBeat,
};
use zipfleet_tests::fleet::fleet_config;

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

const LIMITS: FairLimits = FairLimits {
    lanes: 8,
    max_queued_per_tenant: 1000,
};

async fn status_stores() -> Vec<Arc<dyn StatusStore>> {
    let config = fleet_config("memory://");
    let redis = zipfleet_backends::connect_status(&config)
        .await
        .expect("Redis is reachable (run infra/test.sh)");
    vec![Arc::new(MemoryStatusStore::new()), redis]
}

async fn create(
    store: &dyn StatusStore,
    id: &str,
    tenant: &str,
    fingerprint: &str,
    limits: FairLimits,
) -> CreateOutcome {
    let status = JobStatus::queued(id, Some(format!("p-{tenant}")), tenant, 3);
    store
        .create(&NewJob {
            status: &status,
            fingerprint,
            pictures: &["urls/one".to_string(), "objects/two/".to_string()],
            limits,
        })
        .await
        .unwrap()
}

fn begin<'a>(id: &'a str, tenant: &'a str, attempt: u32) -> BeginJob<'a> {
    BeginJob {
        job_id: id,
        project_id: None,
        tenant,
        attempt,
        total: 3,
        claim: None,
    }
}

fn succeeded(mut status: JobStatus) -> JobStatus {
    status.state = JobState::Succeeded;
    status.finished_at = Some(zipfleet_shared::status::now());
    status
}

#[tokio::test]
async fn status_transitions_never_go_backwards() {
    for store in status_stores().await {
        let kind = store.kind();
        let id = unique("st");
        assert!(
            matches!(
                create(store.as_ref(), &id, "t", "fp1", LIMITS).await,
                CreateOutcome::Created { .. }
            ),
            "{kind}"
        );
        match create(store.as_ref(), &id, "t", "fp2", LIMITS).await {
            CreateOutcome::Existing {
                fingerprint,
                published,
                status,
                ..
            } => assert_eq!(
                (fingerprint.as_str(), published, status.state),
                ("fp1", false, JobState::Queued),
                "{kind}"
            ),
            other => panic!("{kind}: {other:?}"),
        }
        store.mark_published(&id).await.unwrap();
        assert!(
            matches!(
                create(store.as_ref(), &id, "t", "fp1", LIMITS).await,
                CreateOutcome::Existing {
                    published: true,
                    ..
                }
            ),
            "{kind}"
        );
        let BeginOutcome::Started(running) = store.begin(&begin(&id, "t", 1)).await.unwrap() else {
            panic!("{kind}")
        };
        store
            .add_progress(&id, 1, 0, Duration::from_millis(20), Some(&"c".repeat(64)))
            .await
            .unwrap();
        store
            .add_progress(&id, 0, 1, Duration::from_millis(20), None)
            .await
            .unwrap();
        let now = store.get(&id).await.unwrap().unwrap();
        assert_eq!(
            (now.state, now.progress, now.tenant.as_str()),
            (
                JobState::Running,
                Progress {
                    total: 3,
                    done: 1,
                    failed: 1
                },
                "t"
            ),
            "{kind}"
        );
        let stored = store.finish(&succeeded(running.clone())).await.unwrap();
        assert!(
            matches!(&stored, FinishOutcome::Stored(s) if s.state == JobState::Succeeded),
            "{kind}: {stored:?}"
        );
        let mut late = running.clone();
        late.state = JobState::Failed;
        assert!(
            matches!(store.finish(&late).await.unwrap(), FinishOutcome::Stored(s) if s.state == JobState::Succeeded),
            "{kind}: the first final state wins"
        );
        assert!(
            matches!(store.begin(&begin(&id, "t", 2)).await.unwrap(), BeginOutcome::AlreadyFinal(s) if s.state == JobState::Succeeded),
            "{kind}: a late running never overwrites"
        );
        assert!(
            matches!(
                store.cancel(&id).await.unwrap(),
                CancelOutcome::AlreadyFinal(_)
            ),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn cancelling_queued_and_running_jobs() {
    for store in status_stores().await {
        let kind = store.kind();
        let queued = unique("cq");
        create(store.as_ref(), &queued, "t", "f", LIMITS).await;
        assert!(
            matches!(store.cancel(&queued).await.unwrap(), CancelOutcome::Cancelled(s) if s.state == JobState::Cancelled),
            "{kind}"
        );
        assert!(
            !store.work_waiting().await.unwrap(),
            "{kind}: off the ledger"
        );
        assert!(
            matches!(
                store.begin(&begin(&queued, "t", 1)).await.unwrap(),
                BeginOutcome::AlreadyFinal(_)
            ),
            "{kind}"
        );
        let running = unique("cr");
        create(store.as_ref(), &running, "t", "f", LIMITS).await;
        store.begin(&begin(&running, "t", 1)).await.unwrap();
        assert_eq!(
            store.signal(&running).await.unwrap(),
            JobSignal::CarryOn,
            "{kind}"
        );
        assert!(
            matches!(
                store.cancel(&running).await.unwrap(),
                CancelOutcome::Requested(_)
            ),
            "{kind}"
        );
        assert_eq!(
            store.signal(&running).await.unwrap(),
            JobSignal::Cancel,
            "{kind}"
        );
        assert_eq!(
            store.cancel(&unique("none")).await.unwrap(),
            CancelOutcome::NotFound,
            "{kind}"
        );
    }
}

#[tokio::test]
async fn a_job_first_seen_by_a_worker_is_created_running() {
    for store in status_stores().await {
        let id = unique("direct");
        let job = BeginJob {
            job_id: &id,
            project_id: Some("p"),
            tenant: "school",
            attempt: 1,
            total: 2,
            claim: None,
        };
        let BeginOutcome::Started(status) = store.begin(&job).await.unwrap() else {
            panic!()
        };
        assert_eq!(
            (
                status.state,
                status.project_id.as_deref(),
                status.tenant.as_str()
            ),
            (JobState::Running, Some("p"), "school")
        );
        let read = store.get(&id).await.unwrap().unwrap();
        assert_eq!(read.state, JobState::Running, "{}", store.kind());
    }
}

/// Tenant A has 6 queued and 2 running; B arrives with 2. Both stores give
/// B's lane first, the same places in line, and refuse A over its quota
/// while B is still accepted.
#[tokio::test]
async fn the_ledger_puts_the_tenant_with_least_in_flight_first() {
    let limits = FairLimits {
        lanes: 8,
        max_queued_per_tenant: 6,
    };
    for store in status_stores().await {
        let kind = store.kind();
        let (a, b) = (unique("a"), unique("b"));
        let mut a_lane = None;
        for i in 0..8 {
            match create(store.as_ref(), &format!("{a}-{i}"), &a, "f", limits).await {
                CreateOutcome::Created { lane } => {
                    if let Some(earlier) = a_lane {
                        assert_eq!(earlier, lane, "{kind}: one lane per tenant");
                    }
                    a_lane = Some(lane);
                }
                other => panic!("{kind}: {other:?}"),
            }
            if i < 2 {
                store
                    .begin(&begin(&format!("{a}-{i}"), &a, 1))
                    .await
                    .unwrap();
            }
        }
        assert_eq!(
            create(store.as_ref(), &format!("{a}-8"), &a, "f", limits).await,
            CreateOutcome::QuotaExceeded { queued: 6 },
            "{kind}: A has its quota queued"
        );
        let b_lane = match create(store.as_ref(), &format!("{b}-0"), &b, "f", limits).await {
            CreateOutcome::Created { lane } => lane,
            other => panic!("{kind}: {other:?}"),
        };
        create(store.as_ref(), &format!("{b}-1"), &b, "f", limits).await;
        assert_ne!(Some(b_lane), a_lane, "{kind}: B gets a lane of its own");
        assert_ne!(
            b_lane, 0,
            "{kind}: lane 0 is for jobs the ledger does not know"
        );

        let order = store.dispatch_order(8).await.unwrap();
        // This decision found nothing to start: its claim goes.
        store.release(order.claim.as_ref().unwrap()).await.unwrap();
        assert_eq!(
            order.lanes[..2],
            [b_lane, a_lane.unwrap()],
            "{kind}: B runs nothing, so B's lane first"
        );
        assert_eq!(order.expected, 2, "{kind}");
        assert!(store.work_waiting().await.unwrap(), "{kind}");

        let place = |id: String| {
            let store = store.clone();
            async move { store.place_in_line(&id).await.unwrap() }
        };
        assert_eq!(
            place(format!("{b}-0")).await.unwrap().jobs_ahead,
            0,
            "{kind}"
        );
        assert_eq!(
            place(format!("{b}-1")).await.unwrap().jobs_ahead,
            1,
            "{kind}"
        );
        assert_eq!(
            place(format!("{a}-7")).await.unwrap().jobs_ahead,
            5 + 2,
            "{kind}: A's five before it and both of B's"
        );
        assert_eq!(place(format!("{a}-0")).await, None, "{kind}: running");

        // B's first starts, then goes back to its lane (a worker stopping).
        store.begin(&begin(&format!("{b}-0"), &b, 1)).await.unwrap();
        assert_eq!(
            place(format!("{b}-1")).await.unwrap().jobs_ahead,
            0,
            "{kind}"
        );
        store
            .hand_back(&format!("{b}-0"), &b, b_lane)
            .await
            .unwrap();
        assert_eq!(
            place(format!("{b}-0")).await.unwrap().jobs_ahead,
            0,
            "{kind}: back in its place"
        );
        let loads = store.tenants().await.unwrap();
        let load = |t: &str| loads.iter().find(|l| l.tenant == t).unwrap().clone();
        assert_eq!((load(&b).queued, load(&b).running), (2, 0), "{kind}");
        assert_eq!((load(&a).queued, load(&a).running), (6, 2), "{kind}");
    }
}

#[tokio::test]
async fn an_erased_job_cannot_come_back() {
    for store in status_stores().await {
        let kind = store.kind();
        let id = unique("er");
        create(store.as_ref(), &id, "t", "f", LIMITS).await;
        let BeginOutcome::Started(running) = store.begin(&begin(&id, "t", 1)).await.unwrap() else {
            panic!("{kind}")
        };
        let content = "ab".repeat(32);
        store
            .add_progress(&id, 1, 0, Duration::ZERO, Some(&content))
            .await
            .unwrap();
        let erased = store
            .erase(&id, Duration::from_secs(2))
            .await
            .unwrap()
            .expect("known");
        let mut pictures = erased.pictures.clone();
        pictures.sort();
        assert_eq!(pictures, ["objects/two/", "urls/one"], "{kind}");
        assert_eq!(erased.contents, [content], "{kind}");
        assert_eq!(
            store.signal(&id).await.unwrap(),
            JobSignal::Erased,
            "{kind}"
        );
        assert_eq!(store.get(&id).await.unwrap(), None, "{kind}: 404 at once");
        assert_eq!(
            store.finish(&succeeded(running)).await.unwrap(),
            FinishOutcome::Erased,
            "{kind}: no status written"
        );
        assert_eq!(
            store.begin(&begin(&id, "t", 2)).await.unwrap(),
            BeginOutcome::Erased,
            "{kind}: a late message runs nothing"
        );
        assert_eq!(
            create(store.as_ref(), &id, "t", "f", LIMITS).await,
            CreateOutcome::Erased,
            "{kind}: the id cannot be posted again"
        );
        store.forget(&id).await.unwrap();
        assert_eq!(
            store.erase(&id, Duration::from_secs(2)).await.unwrap(),
            None,
            "{kind}: a second erasure finds nothing"
        );
        assert!(store.is_erased(&id).await.unwrap(), "{kind}");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert!(
            !store.is_erased(&id).await.unwrap(),
            "{kind}: tombstones expire"
        );
    }
}

#[tokio::test]
async fn search_walks_an_index_newest_first_in_pages() {
    for store in status_stores().await {
        let kind = store.kind();
        let (tenant, other) = (unique("s"), unique("o"));
        let mut ids = Vec::new();
        for i in 0..7 {
            let id = format!("{tenant}-{i}");
            create(store.as_ref(), &id, &tenant, "f", LIMITS).await;
            create(store.as_ref(), &format!("{other}-{i}"), &other, "f", LIMITS).await;
            ids.push(id);
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        store.begin(&begin(&ids[5], &tenant, 1)).await.unwrap();
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = store
                .search(&JobQuery {
                    tenant: Some(tenant.clone()),
                    limit: 3,
                    cursor: cursor.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert!(page.jobs.len() <= 3, "{kind}");
            seen.extend(page.jobs.iter().map(|j| j.job_id.clone()));
            match page.next_cursor {
                Some(next) => cursor = Cursor::decode(&next),
                None => break,
            }
        }
        let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
        assert_eq!(seen, newest_first, "{kind}: every job once, newest first");
        let running = store
            .search(&JobQuery {
                tenant: Some(tenant.clone()),
                state: Some(JobState::Running),
                ..Default::default()
            })
            .await
            .unwrap();
        let running: Vec<_> = running.jobs.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(running, [ids[5].as_str()], "{kind}");
        let project = store.project_jobs(&format!("p-{tenant}")).await.unwrap();
        assert_eq!(project.len(), 7, "{kind}");
        let exact = store
            .search(&JobQuery {
                job_id: Some(ids[2].clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(exact.jobs.len(), 1, "{kind}");
        assert_eq!(exact.jobs[0].tenant, tenant, "{kind}");
    }
}

#[tokio::test]
async fn workers_are_seen_with_their_pace() {
    for store in status_stores().await {
        let kind = store.kind();
        let id = unique("w");
        let beat = |images| WorkerBeat {
            worker_id: id.clone(),
            slots: 2,
            busy: 1,
            images,
        };
        store.worker_seen(&beat(10)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        store.worker_seen(&beat(20)).await.unwrap();
        let workers = store.workers().await.unwrap();
        let me = workers.iter().find(|w| w.worker_id == id).expect("seen");
        assert_eq!((me.slots, me.busy), (2, 1), "{kind}");
        assert!(
            (10.0..=21.0).contains(&me.images_per_second),
            "{kind}: {} images/s",
            me.images_per_second
        );
        assert!(store.pace().await.unwrap().slots >= 2, "{kind}");
    }
}

/// Two dispatch decisions at the same moment: the first claims its slot
/// for the tenant it chose, so the second chooses the other tenant; a
/// released claim and a start with the claim both settle it.
#[tokio::test]
async fn a_dispatch_decision_claims_its_slot() {
    for store in status_stores().await {
        let kind = store.kind();
        let (a, b) = (unique("ca"), unique("cb"));
        for i in 0..2 {
            create(store.as_ref(), &format!("{a}-{i}"), &a, "f", LIMITS).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        create(store.as_ref(), &format!("{b}-0"), &b, "f", LIMITS).await;
        let first = store.dispatch_order(8).await.unwrap();
        let second = store.dispatch_order(8).await.unwrap();
        let (first_claim, second_claim) = (first.claim.unwrap(), second.claim.unwrap());
        assert_eq!(
            first_claim.tenant, a,
            "{kind}: the tie goes to the longer wait"
        );
        assert_eq!(second_claim.tenant, b, "{kind}: a's slot is claimed");
        store.release(&first_claim).await.unwrap();
        let b0 = format!("{b}-0");
        let mut start = begin(&b0, &b, 1);
        start.claim = Some(&second_claim);
        store.begin(&start).await.unwrap();
        let loads = store.tenants().await.unwrap();
        let in_flight = |t: &str| loads.iter().find(|l| l.tenant == t).map(|l| l.running);
        assert_eq!((in_flight(&a), in_flight(&b)), (Some(0), Some(1)), "{kind}");
        // B just started: A's turn, though B's... A is next either way now.
        assert_eq!(
            store.dispatch_order(8).await.unwrap().claim.unwrap().tenant,
            a,
            "{kind}"
        );
    }
}
