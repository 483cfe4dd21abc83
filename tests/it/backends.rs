//! The real object store held to the same behaviour as the in-process one:
//! S3 (SeaweedFS) and a directory. The status stores are in `status_stores`.

use std::sync::Arc;
use std::time::Duration;
use zipfleet_shared::store::{ObjectStore, StoreError};
use zipfleet_tests::fleet::fleet_config;

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
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
