//! Erasure on the real fleet (RabbitMQ, SeaweedFS, Redis): `DELETE
//! /v1/jobs/{id}` and `DELETE /v1/projects/{id}` leave nothing derived from
//! the job's pictures — searched for by their bytes in every object the
//! fleet keeps, not only under the keys one expects — while another job
//! sharing a picture keeps its zip and status and runs again; a running job
//! erased mid-way writes nothing afterwards; cancel keeps its meaning; a
//! versioned bucket keeps no old version of an erased zip.

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use zipfleet_shared::status::JobState;
use zipfleet_tests::fleet::{fleet_config, spawn_fleet, spawn_fleet_with, Fleet};
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::{images, zipcheck};

const LIMIT: Duration = Duration::from_secs(60);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Keys of the fleet's objects holding any of `needles` (skipping `except`).
async fn holding(fleet: &Fleet, needles: &[&[u8]], except: &[String]) -> Vec<String> {
    fleet
        .stored_objects()
        .await
        .into_iter()
        .filter(|(key, _)| !except.iter().any(|e| key.ends_with(e.as_str())))
        .filter(|(_, bytes)| needles.iter().any(|needle| contains(bytes, needle)))
        .map(|(key, _)| key)
        .collect()
}

async fn zip_entries(fleet: &Fleet, job_id: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let status = fleet.get_status(job_id).await;
    let url = &status.result.as_ref().expect("a result").url;
    zipcheck::entries_from_bytes(fleet.download(url).await)
}

/// `DELETE` as a client does it: a 503 (a backend that failed midway; the
/// erasure is unfinished) is asked again, a few times.
async fn erase(fleet: &Fleet, path: &str) -> (u16, Value) {
    for _ in 0..5 {
        let response = fleet.call(Method::DELETE, path).await;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        if status != 503 {
            return (status, body);
        }
        eprintln!("{path}: 503 {body}; asking again");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("{path} kept answering 503")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_job_leaves_nothing_of_its_pictures_and_another_job_keeps_its_own() {
    let fleet = spawn_fleet(1).await;
    let server = TestServer::start().await;
    let (shared, own) = (images::jpeg(640, 480, 11), images::png(300, 200, 12));
    let shared_url = server.image("/shared.jpg", "image/jpeg", shared.clone());
    let own_url = server.image("/own.png", "image/png", own.clone());
    let object = images::jpeg(500, 400, 13);
    let object_key = format!("uploads/{}.jpg", unique("o"));
    fleet.put_object(&object_key, object.clone()).await;

    let (erased_id, kept_id) = (unique("erased"), unique("kept"));
    // The kept job asks for another size: the shared picture is then
    // rendered twice and the cache keeps its downloaded bytes too.
    let job = |id: &str, erased: bool| {
        let mut images = vec![
            json!({"id": "s", "label": "cats", "url": shared_url}),
            json!({"id": "o", "label": "cats", "object": {"key": object_key}}),
        ];
        if erased {
            images.push(json!({"id": "w", "label": "dogs", "url": own_url}));
        }
        let width = if erased { 224 } else { 128 };
        json!({"job_id": id, "images": images, "output": {"width": width, "height": 96}})
    };
    for (id, with_own) in [(&erased_id, true), (&kept_id, false)] {
        assert_eq!(fleet.post_job(&job(id, with_own)).await.status(), 202);
        let done = fleet.wait_final(id, LIMIT).await;
        assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    }
    // What must be gone: the pictures' bytes and the erased job's renders.
    let renders = zip_entries(&fleet, &erased_id).await;
    let rendered: Vec<&[u8]> = ["cats/s.jpg", "cats/o.jpg", "dogs/w.jpg"]
        .iter()
        .map(|name| renders.get(*name).expect(name).as_slice())
        .collect();
    let kept_zip = format!("zips/{kept_id}.zip");
    let before = holding(&fleet, &[&shared], &[]).await;
    assert!(
        !before.is_empty(),
        "the cache kept a picture's bytes (else the search below proves nothing)"
    );

    let (status, receipt) = erase(&fleet, &format!("/v1/jobs/{erased_id}")).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["job_id"], erased_id.as_str());
    let erased = &receipt["erased"];
    assert_eq!(
        (erased["zips"].as_u64(), erased["statuses"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        erased["cache_entries"].as_u64().unwrap() >= 6,
        "renders, a kept source, URL and object records: {receipt}"
    );

    let mut needles: Vec<&[u8]> = vec![&shared, &own];
    needles.extend(&rendered);
    let left = holding(&fleet, &needles, std::slice::from_ref(&kept_zip)).await;
    assert!(
        left.is_empty(),
        "objects still holding the erased job's pictures: {left:?}"
    );
    assert_eq!(fleet.zip_count(&erased_id).await, 0);
    assert_eq!(
        fleet
            .call(Method::GET, &format!("/v1/jobs/{erased_id}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        erase(&fleet, &format!("/v1/jobs/{erased_id}")).await.0,
        404,
        "a second DELETE"
    );
    let reused = fleet.post_job(&job(&erased_id, true)).await;
    assert_eq!(reused.status(), 409, "the id is tombstoned");
    let body: Value = reused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "erased");

    // The other job sharing two of the pictures is intact, and runs again
    // (rendering afresh: its cache entries went too).
    let kept = fleet.get_status(&kept_id).await;
    assert_eq!(kept.state, JobState::Succeeded);
    assert_eq!(
        zip_entries(&fleet, &kept_id).await.len(),
        3,
        "two images and the manifest"
    );
    let again = unique("again");
    assert_eq!(fleet.post_job(&job(&again, false)).await.status(), 202);
    let rerun = fleet.wait_final(&again, LIMIT).await;
    assert_eq!(rerun.state, JobState::Succeeded, "{rerun:?}");
    let manifest = zipcheck::manifest(&zip_entries(&fleet, &again).await);
    assert!(
        manifest["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|image| image.get("cache").is_none()),
        "nothing was reused from the erased entries: {manifest}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_erased_while_it_runs_writes_nothing_afterwards() {
    let fleet = spawn_fleet(1).await;
    let server = TestServer::start().await;
    let fast = images::jpeg(400, 300, 21);
    let fast_url = server.image("/fast.jpg", "image/jpeg", fast.clone());
    let slow_url = server.route(
        "/slow.jpg",
        Route::Drip {
            body: images::jpeg(64, 64, 22),
            interval: Duration::from_millis(8),
        },
    );
    let id = unique("running");
    let spec = json!({"job_id": id, "images": [
        {"id": "f", "label": "a", "url": fast_url},
        {"id": "s", "label": "a", "url": slow_url},
    ]});
    assert_eq!(fleet.post_job(&spec).await.status(), 202);
    fleet
        .wait_for(&id, LIMIT, |s| {
            s.state == JobState::Running && s.progress.done >= 1
        })
        .await;
    let (status, receipt) = erase(&fleet, &format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200, "{receipt}");
    // The slow image would have taken its worker ~10 s more: wait that out.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        fleet
            .call(Method::GET, &format!("/v1/jobs/{id}"))
            .await
            .status(),
        404
    );
    assert_eq!(fleet.zip_count(&id).await, 0, "no zip appeared");
    let left = holding(&fleet, &[&fast], &[]).await;
    assert!(left.is_empty(), "cache entries came back: {left:?}");
    let renders: Vec<String> = fleet
        .stored_objects()
        .await
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.contains("/cache/renders/") || key.contains("/zips/"))
        .collect();
    assert!(
        renders.is_empty(),
        "renders or zips written after the erasure: {renders:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_is_erased_with_one_receipt() {
    let fleet = spawn_fleet(1).await;
    let server = TestServer::start().await;
    let project = unique("class");
    let mut ids = Vec::new();
    for seed in 0..3u8 {
        let url = server.image(
            &format!("/p{seed}.jpg"),
            "image/jpeg",
            images::jpeg(200, 150, 30 + seed),
        );
        let id = unique("p");
        let spec = json!({"job_id": id, "project_id": project, "images": [{"id": "1", "label": "a", "url": url}]});
        assert_eq!(fleet.post_job(&spec).await.status(), 202);
        ids.push(id);
    }
    let other = unique("other");
    let url = server.image("/other.jpg", "image/jpeg", images::jpeg(200, 150, 40));
    let spec = json!({"job_id": other, "project_id": unique("class"), "images": [{"id": "1", "label": "a", "url": url}]});
    assert_eq!(fleet.post_job(&spec).await.status(), 202);
    for id in ids.iter().chain([&other]) {
        fleet.wait_final(id, LIMIT).await;
    }
    let (status, receipt) = erase(&fleet, &format!("/v1/projects/{project}")).await;
    assert_eq!(status, 200, "{receipt}");
    let mut erased: Vec<String> = serde_json::from_value(receipt["job_ids"].clone()).unwrap();
    erased.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(erased, expected);
    assert_eq!(receipt["erased"]["zips"], 3);
    assert_eq!(receipt["erased"]["statuses"], 3);
    for id in &ids {
        assert_eq!(
            fleet
                .call(Method::GET, &format!("/v1/jobs/{id}"))
                .await
                .status(),
            404
        );
    }
    assert_eq!(
        fleet.get_status(&other).await.state,
        JobState::Succeeded,
        "another project is untouched"
    );
    assert_eq!(
        erase(&fleet, &format!("/v1/projects/{project}")).await.0,
        404,
        "nothing left to erase"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_keeps_a_readable_status_and_erase_then_forgets_it() {
    // No worker: the job stays queued.
    let fleet = spawn_fleet(0).await;
    let id = unique("c");
    let spec = json!({"job_id": id, "images": [{"id": "1", "label": "a", "url": "http://127.0.0.1:9/a.jpg"}]});
    assert_eq!(fleet.post_job(&spec).await.status(), 202);
    let cancelled = fleet
        .call(Method::POST, &format!("/v1/jobs/{id}/cancel"))
        .await;
    assert_eq!(cancelled.status(), 200);
    let status = fleet.get_status(&id).await;
    assert_eq!(
        status.state,
        JobState::Cancelled,
        "still readable after a cancel"
    );
    assert_eq!(
        fleet
            .call(Method::POST, &format!("/v1/jobs/{id}/cancel"))
            .await
            .status(),
        409,
        "an ended job cannot be cancelled"
    );
    assert_eq!(erase(&fleet, &format!("/v1/jobs/{id}")).await.0, 200);
    assert_eq!(
        erase(&fleet, &format!("/v1/jobs/{id}")).await.0,
        404,
        "erase twice"
    );
    assert_eq!(
        fleet
            .call(Method::GET, &format!("/v1/jobs/{id}"))
            .await
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_bucket_keeps_no_old_version_of_an_erased_zip() {
    let bucket = format!(
        "zf-versioned-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let s3 = zipfleet_tests::fleet::s3_client().await;
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket made");
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning on");
    let mut config = fleet_config(&zipfleet_tests::fleet::amqp_url());
    config.store = format!("s3://{bucket}/zf");
    let fleet = spawn_fleet_with(config, 1).await;
    let server = TestServer::start().await;
    let url = server.image("/v.jpg", "image/jpeg", images::jpeg(300, 200, 50));
    let id = unique("v");
    let spec = json!({"job_id": id, "images": [{"id": "1", "label": "a", "url": url}]});
    assert_eq!(fleet.post_job(&spec).await.status(), 202);
    assert_eq!(
        fleet.wait_final(&id, LIMIT).await.state,
        JobState::Succeeded
    );
    // A retried upload leaves an older version, and a crashed one an unfinished multipart upload.
    let key = format!("zf/zips/{id}.zip");
    fleet
        .backends
        .store
        .put_bytes(&key, b"an older attempt".to_vec().into(), "application/zip")
        .await
        .unwrap();
    s3.create_multipart_upload()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let versions = s3
        .list_object_versions()
        .bucket(&bucket)
        .prefix(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2, "two versions before");

    let (status, receipt) = erase(&fleet, &format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200, "{receipt}");
    let versions = s3
        .list_object_versions()
        .bucket(&bucket)
        .prefix(&key)
        .send()
        .await
        .unwrap();
    assert!(
        versions.versions().is_empty(),
        "no version left: {versions:?}"
    );
    assert!(
        versions.delete_markers().is_empty(),
        "no delete marker left"
    );
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .prefix(&key)
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "the unfinished upload was aborted"
    );
}
