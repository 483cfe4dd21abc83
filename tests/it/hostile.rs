//! Hostile input: every bad image gets the contract's code, the job's other
//! images still make it into the zip, and the worker keeps serving. Every
//! request goes to loopback only; the non-loopback ranges are covered by the
//! unit tests of the address classification (`worker/src/fetch/guard.rs`).

use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use zipfleet_shared::config::SourcePolicy;
use zipfleet_shared::status::{JobState, JobStatus};
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::{images, spec, test_settings, zipcheck, Embedded};

const LIMIT: Duration = Duration::from_secs(90);

fn codes(status: &JobStatus) -> BTreeMap<String, String> {
    status
        .result
        .as_ref()
        .expect("succeeded")
        .skipped
        .iter()
        .map(|s| (s.id.clone(), s.code.as_str().to_string()))
        .collect()
}

/// Run one job in a fresh embedded worker with `policy`; return its status and zip entries.
async fn run(
    policy: SourcePolicy,
    images: serde_json::Value,
) -> (
    JobStatus,
    BTreeMap<String, Vec<u8>>,
    Embedded,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.jpg"), images::jpeg(400, 300, 1)).unwrap();
    let mut settings = test_settings(dir.path());
    settings.policy = policy;
    settings.limits.idle_timeout = Duration::from_secs(1);
    settings.limits.download_timeout = Duration::from_secs(6);
    let fleet = Embedded::start(dir.path(), &settings);
    let mut list = images.as_array().unwrap().clone();
    list.push(json!({"id": "good", "label": "ok", "object": {"key": "good.jpg"}}));
    fleet
        .submit("hostile", &spec(json!({"images": list})))
        .await;
    let status = fleet.wait("hostile", LIMIT).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    let entries = zipcheck::entries(&dir.path().join("zips/hostile.zip"));
    assert!(
        entries.contains_key("ok/good.jpg"),
        "the good image is in the zip"
    );
    // The worker keeps serving.
    fleet
        .submit(
            "next",
            &spec(json!({"images": [{"id": "1", "label": "a", "object": {"key": "good.jpg"}}]})),
        )
        .await;
    assert_eq!(fleet.wait("next", LIMIT).await.state, JobState::Succeeded);
    (status, entries, fleet, dir)
}

fn loopback_only() -> SourcePolicy {
    SourcePolicy {
        allow_private_sources: false,
        allowed_source_nets: vec!["127.0.0.1/32".parse().unwrap()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_in_every_spelling_is_refused_before_any_connection() {
    let server = TestServer::start().await;
    server.image("/x.jpg", "image/jpeg", images::jpeg(32, 32, 1));
    let port = server.addr.port();
    let forms = [
        format!("http://127.0.0.1:{port}/x.jpg"),
        format!("http://localhost:{port}/x.jpg"),
        format!("http://0.0.0.0:{port}/x.jpg"),
        format!("http://[::1]:{port}/x.jpg"),
        format!("http://[::ffff:127.0.0.1]:{port}/x.jpg"),
        format!("http://2130706433:{port}/x.jpg"),
        format!("http://0x7f.1:{port}/x.jpg"),
        format!("http://0177.0.0.1:{port}/x.jpg"),
        format!("http://127.1:{port}/x.jpg"),
    ];
    let list: Vec<_> = forms
        .iter()
        .enumerate()
        .map(|(i, url)| json!({"id": format!("f{i}"), "label": "x", "url": url}))
        .collect();
    let (status, entries, fleet, _dir) = run(SourcePolicy::default(), json!(list)).await;
    let codes = codes(&status);
    assert_eq!(codes.len(), forms.len(), "{codes:?}");
    assert!(codes.values().all(|c| c == "blocked_address"), "{codes:?}");
    assert_eq!(
        server.connections(),
        0,
        "no connection reached the listener"
    );
    assert_eq!(entries.len(), 2, "only the good image and the manifest");
    let message = &status.result.unwrap().skipped[0].message;
    assert!(
        message.contains("127.0.0.1") && message.contains("may not use"),
        "{message}"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_rechecked_and_limited() {
    let server = TestServer::start().await;
    let other = TestServer::start_on("127.0.0.2").await;
    other.image("/secret.jpg", "image/jpeg", images::jpeg(32, 32, 2));
    let to_other = server.route(
        "/to-other",
        Route::Redirect {
            status: 302,
            location: other.url("/secret.jpg"),
        },
    );
    let looping = server.route(
        "/loop",
        Route::Redirect {
            status: 301,
            location: "/loop".into(),
        },
    );
    let to_file = server.route(
        "/to-file",
        Route::Redirect {
            status: 302,
            location: "file:///etc/passwd".into(),
        },
    );
    server.image("/fine.png", "image/png", images::png(100, 80, 3));
    let ok_redirect = server.route(
        "/ok-redirect",
        Route::Redirect {
            status: 307,
            location: "/fine.png".into(),
        },
    );
    let (status, entries, fleet, _dir) = run(
        loopback_only(),
        json!([
            {"id": "other", "label": "x", "url": to_other},
            {"id": "loop", "label": "x", "url": looping},
            {"id": "file", "label": "x", "url": to_file},
            {"id": "redirected", "label": "x", "url": ok_redirect},
        ]),
    )
    .await;
    let codes = codes(&status);
    assert_eq!(codes["other"], "blocked_address");
    assert_eq!(
        other.connections(),
        0,
        "the redirect to 127.0.0.2 was refused before connecting"
    );
    assert_eq!(codes["loop"], "fetch_failed");
    assert_eq!(codes["file"], "blocked_address");
    assert!(!codes.contains_key("redirected"));
    assert!(
        entries.contains_key("x/redirected.jpg"),
        "an allowed redirect is followed"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_lying_huge_and_fake_downloads_are_cut_off() {
    let server = TestServer::start().await;
    let drip = server.route(
        "/drip.jpg",
        Route::Drip {
            body: images::jpeg(64, 64, 4),
            interval: Duration::from_millis(1500),
        },
    );
    let liar = server.route(
        "/liar.jpg",
        Route::LyingLength {
            claimed: 100_000,
            body: images::jpeg(64, 64, 5)[..200].to_vec(),
        },
    );
    let huge = server.route(
        "/huge.jpg",
        Route::Unbounded {
            total: 60 * 1024 * 1024,
        },
    );
    let html = server.image(
        "/login.jpg",
        "image/jpeg",
        b"<!DOCTYPE html><html><body>Sign in</body></html>".to_vec(),
    );
    let forbidden = server.route(
        "/forbidden.jpg",
        Route::Body {
            status: 403,
            content_type: "text/html",
            body: b"no".to_vec(),
        },
    );
    let missing = server.url("/nothing-here.jpg");
    let (status, _, fleet, _dir) = run(
        loopback_only(),
        json!([
            {"id": "drip", "label": "x", "url": drip},
            {"id": "liar", "label": "x", "url": liar},
            {"id": "huge", "label": "x", "url": huge},
            {"id": "html", "label": "x", "url": html},
            {"id": "forbidden", "label": "x", "url": forbidden},
            {"id": "missing", "label": "x", "url": missing},
        ]),
    )
    .await;
    let codes = codes(&status);
    assert_eq!(codes["drip"], "fetch_timeout");
    assert_eq!(codes["liar"], "fetch_timeout");
    assert_eq!(codes["huge"], "too_large");
    assert_eq!(codes["html"], "unsupported_format");
    assert_eq!(codes["forbidden"], "http_status");
    assert_eq!(codes["missing"], "http_status");
    let skipped = status.result.unwrap().skipped;
    let forbidden = skipped.iter().find(|s| s.id == "forbidden").unwrap();
    assert_eq!(
        forbidden.message,
        "127.0.0.1 would not let us use that image (403)"
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_unusual_images_are_handled() {
    let server = TestServer::start().await;
    let jpeg = images::jpeg(600, 400, 6);
    let rotated = std::fs::read(format!(
        "{}/../examples/images/square-4-rotated.jpg",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // The fixture carries EXIF with orientation 6 and GPS tags (written by exiftool).
    assert!(
        rotated.windows(4).any(|w| w == b"Exif"),
        "the fixture carries EXIF"
    );
    let sixteen = images::encode(
        &image::DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(
            300,
            200,
            image::Rgb([65535u16, 0, 0]),
        )),
        image::ImageFormat::Png,
    );
    let list = json!([
        {"id": "bomb", "label": "x", "url": server.image("/bomb.png", "image/png", images::png_bomb_header(50_000, 50_000))},
        {"id": "truncated", "label": "x", "url": server.image("/trunc.jpg", "image/jpeg", jpeg[..jpeg.len() / 2].to_vec())},
        {"id": "garbage", "label": "x", "url": server.image("/garbage.png", "image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRgarbage!!".to_vec())},
        {"id": "cmyk", "label": "y", "url": server.image("/cmyk.jpg", "image/jpeg", images::fixture("cmyk.jpg"))},
        {"id": "animated", "label": "y", "url": server.image("/anim.gif", "image/gif", images::fixture("animated.gif"))},
        {"id": "sixteen", "label": "y", "url": server.image("/16.png", "image/png", sixteen)},
        {"id": "rotated", "label": "y", "url": server.image("/rotated.jpg", "image/jpeg", rotated)},
    ]);
    let (status, entries, fleet, dir) = run(loopback_only(), list).await;
    let codes = codes(&status);
    assert_eq!(codes["bomb"], "too_many_pixels");
    assert_eq!(codes["truncated"], "decode_failed");
    assert_eq!(codes["garbage"], "decode_failed");
    assert_eq!(codes.len(), 3, "{codes:?}");

    let pixel = |name: &str, x: u32, y: u32| {
        image::load_from_memory(&entries[name])
            .unwrap()
            .to_rgb8()
            .get_pixel(x, y)
            .0
    };
    let near = |a: [u8; 3], b: [u8; 3]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() < 40)
    };
    assert!(
        near(pixel("y/cmyk.jpg", 112, 20), [255, 0, 0]),
        "CMYK top is red: {:?}",
        pixel("y/cmyk.jpg", 112, 20)
    );
    assert!(
        near(pixel("y/cmyk.jpg", 112, 200), [0, 0, 255]),
        "CMYK bottom is blue: {:?}",
        pixel("y/cmyk.jpg", 112, 200)
    );
    assert!(
        near(pixel("y/animated.jpg", 112, 112), [255, 0, 0]),
        "the first frame only"
    );
    assert!(near(pixel("y/sixteen.jpg", 112, 112), [255, 0, 0]));
    let rotated = &entries["y/rotated.jpg"];
    assert!(
        !rotated.windows(4).any(|w| w == b"Exif"),
        "no EXIF (so no GPS) in the output"
    );
    let manifest = zipcheck::manifest(&entries);
    let line = manifest["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "rotated")
        .unwrap()
        .clone();
    assert_eq!(
        (line["width"].as_u64(), line["height"].as_u64()),
        (Some(800), Some(600)),
        "upright size"
    );
    drop(dir);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_once_and_client_errors_never() {
    let server = TestServer::start().await;
    let gone = server.route(
        "/gone.jpg",
        Route::Body {
            status: 404,
            content_type: "text/plain",
            body: b"gone".to_vec(),
        },
    );
    let broken = server.route(
        "/broken.jpg",
        Route::Body {
            status: 503,
            content_type: "text/plain",
            body: b"busy".to_vec(),
        },
    );
    let before = server.requests();
    let (status, _, fleet, _dir) = run(
        loopback_only(),
        json!([{"id": "gone", "label": "x", "url": gone}]),
    )
    .await;
    assert_eq!(codes(&status)["gone"], "http_status");
    assert_eq!(server.requests() - before, 1, "a 404 is asked once");
    fleet.stop().await;

    let before = server.requests();
    let (status, _, fleet, _dir) = run(
        loopback_only(),
        json!([{"id": "broken", "label": "x", "url": broken}]),
    )
    .await;
    assert_eq!(codes(&status)["broken"], "http_status");
    assert!(status.result.unwrap().skipped[0].message.contains("(503)"));
    assert_eq!(server.requests() - before, 2, "a 503 is retried once");
    fleet.stop().await;
}
