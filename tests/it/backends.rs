//! The real backends held to the same behaviour as the in-process ones:
//! status stores (memory and Redis) and object stores (directory and S3).

use std::sync::Arc;
use std::time::Duration;
use zipfleet_shared::status::{JobState, JobStatus, Progress};
use zipfleet_shared::status_store::memory::MemoryStatusStore;
use zipfleet_shared::status_store::{BeginOutcome, CancelOutcome, CreateOutcome, StatusStore};
use zipfleet_shared::store::{ObjectStore, StoreError};
use zipfleet_tests::fleet::fleet_config;

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn status_stores() -> Vec<Arc<dyn StatusStore>> {
    let config = fleet_config("memory://");
    let redis = zipfleet_backends::connect_status(&config)
        .await
        .expect("Redis is reachable (run infra/test.sh)");
    vec![Arc::new(MemoryStatusStore::new()), redis]
}

#[tokio::test]
async fn status_transitions_never_go_backwards() {
    for store in status_stores().await {
        let kind = store.kind();
        let id = unique("st");
        let queued = JobStatus::queued(&id, Some("p".into()), 3);
        assert_eq!(
            store.create(&queued, "fp1").await.unwrap(),
            CreateOutcome::Created,
            "{kind}"
        );
        match store.create(&queued, "fp2").await.unwrap() {
            CreateOutcome::Existing {
                fingerprint,
                published,
                status,
            } => {
                assert_eq!(
                    (fingerprint.as_str(), published, status.state),
                    ("fp1", false, JobState::Queued),
                    "{kind}"
                );
            }
            other => panic!("{kind}: {other:?}"),
        }
        store.mark_published(&id).await.unwrap();
        assert!(
            matches!(
                store.create(&queued, "fp1").await.unwrap(),
                CreateOutcome::Existing {
                    published: true,
                    ..
                }
            ),
            "{kind}"
        );

        let BeginOutcome::Started(running) = store.begin(&id, None, 1, 3).await.unwrap() else {
            panic!("{kind}")
        };
        store
            .add_progress(&id, 1, 0, Duration::from_millis(20))
            .await
            .unwrap();
        store
            .add_progress(&id, 0, 1, Duration::from_millis(20))
            .await
            .unwrap();
        let now = store.get(&id).await.unwrap().unwrap();
        assert_eq!(
            (now.state, now.progress),
            (
                JobState::Running,
                Progress {
                    total: 3,
                    done: 1,
                    failed: 1
                }
            ),
            "{kind}"
        );

        let mut succeeded = running.clone();
        succeeded.state = JobState::Succeeded;
        succeeded.finished_at = Some(zipfleet_shared::status::now());
        assert_eq!(
            store.finish(&succeeded).await.unwrap().state,
            JobState::Succeeded,
            "{kind}"
        );
        let mut late = running.clone();
        late.state = JobState::Failed;
        assert_eq!(
            store.finish(&late).await.unwrap().state,
            JobState::Succeeded,
            "{kind}: the first final state wins"
        );
        assert!(
            matches!(store.begin(&id, None, 2, 3).await.unwrap(), BeginOutcome::AlreadyFinal(s) if s.state == JobState::Succeeded),
            "{kind}: a late running never overwrites"
        );
        assert_eq!(
            store.get(&id).await.unwrap().unwrap().state,
            JobState::Succeeded,
            "{kind}"
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
        store
            .create(&JobStatus::queued(&queued, None, 1), "f")
            .await
            .unwrap();
        assert!(
            matches!(store.cancel(&queued).await.unwrap(), CancelOutcome::Cancelled(s) if s.state == JobState::Cancelled),
            "{kind}"
        );
        assert!(
            matches!(
                store.begin(&queued, None, 1, 1).await.unwrap(),
                BeginOutcome::AlreadyFinal(_)
            ),
            "{kind}"
        );

        let running = unique("cr");
        store
            .create(&JobStatus::queued(&running, None, 1), "f")
            .await
            .unwrap();
        store.begin(&running, None, 1, 1).await.unwrap();
        assert!(!store.cancel_requested(&running).await.unwrap(), "{kind}");
        assert!(
            matches!(
                store.cancel(&running).await.unwrap(),
                CancelOutcome::Requested(_)
            ),
            "{kind}"
        );
        assert!(store.cancel_requested(&running).await.unwrap(), "{kind}");
        assert_eq!(
            store.cancel(&unique("none")).await.unwrap(),
            CancelOutcome::NotFound,
            "{kind}"
        );
        assert!(
            store.get(&unique("none")).await.unwrap().is_none(),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn a_job_first_seen_by_a_worker_is_created_running() {
    for store in status_stores().await {
        let id = unique("direct");
        let BeginOutcome::Started(status) = store.begin(&id, Some("p"), 1, 2).await.unwrap() else {
            panic!()
        };
        assert_eq!(
            (status.state, status.project_id.as_deref()),
            (JobState::Running, Some("p"))
        );
        assert_eq!(
            store.get(&id).await.unwrap().unwrap().state,
            JobState::Running,
            "{}",
            store.kind()
        );
    }
}

async fn object_stores() -> (tempfile::TempDir, Vec<Arc<dyn ObjectStore>>) {
    let dir = tempfile::tempdir().unwrap();
    let config = fleet_config("memory://");
    let s3 = zipfleet_backends::connect_store(&config)
        .await
        .expect("S3 (SeaweedFS) is reachable (run infra/test.sh)");
    let file: Arc<dyn ObjectStore> =
        Arc::new(zipfleet_shared::store::file::FileStore::new(dir.path()).unwrap());
    (dir, vec![file, s3])
}

#[tokio::test]
async fn large_files_round_trip_and_missing_objects_are_not_found() {
    let (dir, stores) = object_stores().await;
    // 20 MiB + a bit: three multipart parts on S3.
    let bytes: Vec<u8> = (0..(20 * 1024 * 1024 + 12345))
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let source = dir.path().join("big.bin");
    std::fs::write(&source, &bytes).unwrap();
    for store in stores {
        let kind = store.kind();
        let key = store.own_key(&format!("zips/{}.zip", unique("big")));
        assert_eq!(
            store
                .put_file(&key, &source, "application/zip")
                .await
                .unwrap(),
            bytes.len() as u64,
            "{kind}"
        );
        let read = zipfleet_shared::store::read_small(store.as_ref(), &key, 64 * 1024 * 1024)
            .await
            .unwrap();
        assert!(read == bytes, "{kind}: the object reads back identical");
        let url = store
            .download_url(&key, Duration::from_secs(60))
            .await
            .unwrap();
        if kind == "s3" {
            let downloaded = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
            assert_eq!(
                downloaded.len(),
                bytes.len(),
                "the presigned URL serves the object"
            );
        }
        assert!(
            matches!(
                store.get(None, &unique("missing")).await,
                Err(StoreError::NotFound(_))
            ),
            "{kind}"
        );
        store.check().await.unwrap();
    }
}

/// `head` (the cache's ETags): the size, an ETag that changes when the
/// content does, and not-found for a missing key, on both stores.
#[tokio::test]
async fn head_gives_size_and_an_etag_that_changes_with_the_content() {
    let (_dir, stores) = object_stores().await;
    for store in stores {
        let kind = store.kind();
        let key = store.own_key(&format!("cache/{}", unique("head")));
        store
            .put_bytes(
                &key,
                bytes::Bytes::from_static(b"first"),
                "application/octet-stream",
            )
            .await
            .unwrap();
        let first = store.head(None, &key).await.unwrap();
        assert_eq!(first.size, 5, "{kind}");
        assert!(first.etag.is_some(), "{kind}");
        assert_eq!(
            store.head(None, &key).await.unwrap(),
            first,
            "{kind}: stable while unchanged"
        );
        store
            .put_bytes(
                &key,
                bytes::Bytes::from_static(b"second!"),
                "application/octet-stream",
            )
            .await
            .unwrap();
        let second = store.head(None, &key).await.unwrap();
        assert_eq!(second.size, 7, "{kind}");
        assert_ne!(
            second.etag, first.etag,
            "{kind}: a rewrite changes the ETag"
        );
        assert!(
            matches!(
                store.head(None, &unique("missing")).await,
                Err(StoreError::NotFound(_))
            ),
            "{kind}"
        );
    }
}
