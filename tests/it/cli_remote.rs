//! `zipfleet submit --wait`, `status` (with the place in line, `--watch`,
//! `--json`), `cancel` and `erase` (a job, `--project`) against a live fleet.

use reqwest::Method;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use zipfleet_shared::status::JobState;
use zipfleet_tests::fleet::{spawn_fleet, Fleet, TOKEN};
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::images;

const LIMIT: Duration = Duration::from_secs(60);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// Run `zipfleet ARGS` against the fleet's API.
async fn zipfleet(fleet: &Fleet, args: &[&str]) -> Output {
    let api_url = fleet.api_url.clone();
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(zipfleet_tests::binary("zipfleet"))
            .args(&args)
            .env("ZIPFLEET_API_URL", &api_url)
            .env("ZIPFLEET_API_TOKEN", TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A job no worker can finish quickly (its image is on a closed port).
fn queued_job(job_id: &str, tenant: &str, project: Option<&str>) -> serde_json::Value {
    json!({"job_id": job_id, "tenant": tenant, "project_id": project,
           "images": [{"id": "1", "label": "a", "url": "http://127.0.0.1:9/a.jpg"}]})
}

async fn post(fleet: &Fleet, body: &serde_json::Value) {
    let response = fleet.post_job(body).await;
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_waits_for_the_job_and_status_shows_it() {
    let fleet = spawn_fleet(1).await;
    let server = TestServer::start().await;
    let job_id = unique("cli");
    let url = server.image("/cli.jpg", "image/jpeg", images::jpeg(400, 300, 7));
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    std::fs::write(
        &job,
        json!({"job_id": job_id, "images": [{"id": "1", "label": "a", "url": url}]}).to_string(),
    )
    .unwrap();

    let output = zipfleet(&fleet, &["submit", job.to_str().unwrap(), "--wait"]).await;
    assert!(
        output.status.success(),
        "submit failed: {} {}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stdout(&output).contains(&format!("job {job_id} succeeded: 1 images")),
        "{}",
        stdout(&output)
    );

    // Flags work as well as the environment.
    let api_url = fleet.api_url.clone();
    let id = job_id.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(zipfleet_tests::binary("zipfleet"))
            .args(["status", &id, "--api-url", &api_url, "--api-token", TOKEN])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(&format!("job {job_id} (tenant default): succeeded")),
        "{text}"
    );
    assert!(
        text.contains(&format!("job {job_id} succeeded: 1 images")),
        "{text}"
    );

    let output = zipfleet(&fleet, &["status", &job_id, "--json"]).await;
    let status: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("status --json prints the JSON document");
    assert_eq!(status["state"], "succeeded");
    assert_eq!(status["job_id"], job_id.as_str());
    assert_eq!(status["tenant"], "default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_tenant_and_the_place_in_line_as_it_shrinks() {
    // No worker: the jobs wait, and cancelling the ones ahead moves the last up.
    let fleet = spawn_fleet(0).await;
    let tenant = unique("oak-school");
    let ids: Vec<String> = (0..3).map(|_| unique("line")).collect();
    for id in &ids {
        post(&fleet, &queued_job(id, &tenant, Some("class-7b"))).await;
    }
    let last = &ids[2];

    let output = zipfleet(&fleet, &["status", last]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!(
            "job {last} (tenant {tenant}, project class-7b): queued: 2 jobs ahead of you, about "
        )),
        "{text}"
    );
    assert!(text.trim_end().ends_with(" s"), "{text}");

    // --watch prints a line each time the place changes (stderr is not a
    // terminal here: plain lines), and ends when the job does.
    let mut watch = Command::new(zipfleet_tests::binary("zipfleet"))
        .args(["status", last, "--watch"])
        .env("ZIPFLEET_API_URL", &fleet.api_url)
        .env("ZIPFLEET_API_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let reader = BufReader::new(watch.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        lines
            .recv_timeout(Duration::from_secs(20))
            .expect("zipfleet status --watch printed a line")
    };
    let expected = [
        "queued: 2 jobs ahead of you, about",
        "queued: 1 job ahead of you, about",
        "queued: next in line, about",
    ];
    for (ahead, expected) in expected.iter().enumerate() {
        let line = next_line();
        assert!(
            line.starts_with(expected) && line.ends_with(&format!("(tenant {tenant})")),
            "{line:?}, expected {expected:?}"
        );
        // Move the last job up by cancelling the one in front of it.
        if ahead < 2 {
            let response = fleet
                .call(Method::POST, &format!("/v1/jobs/{}/cancel", ids[ahead]))
                .await;
            assert_eq!(response.status(), 200);
        }
    }
    let response = fleet
        .call(Method::POST, &format!("/v1/jobs/{last}/cancel"))
        .await;
    assert_eq!(response.status(), 200);
    let output = tokio::task::spawn_blocking(move || watch.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(!output.status.success(), "a cancelled job is not a success");
    assert!(
        stdout(&output).contains(&format!("job {last} cancelled")),
        "{}",
        stdout(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_queued_then_a_running_job_from_the_command_line() {
    let mut fleet = spawn_fleet(0).await;

    // Queued (no worker yet): cancelled at once, its status stays readable.
    let queued = unique("cancel-q");
    post(&fleet, &queued_job(&queued, "default", None)).await;
    let output = zipfleet(&fleet, &["cancel", &queued]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), format!("job {queued} cancelled"));
    assert_eq!(fleet.get_status(&queued).await.state, JobState::Cancelled);

    // An ended job, or an unknown one, cannot be cancelled: non-zero, with the API's reason.
    let output = zipfleet(&fleet, &["cancel", &queued]).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("409 Conflict")
            && stderr(&output).contains("already ended (cancelled)"),
        "{}",
        stderr(&output)
    );
    let output = zipfleet(&fleet, &["cancel", &unique("nobody")]).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("404 Not Found"),
        "{}",
        stderr(&output)
    );

    // Running: an image that trickles in keeps the job busy; it stops at its next image.
    let server = TestServer::start().await;
    let slow = server.route(
        "/slow.jpg",
        Route::Drip {
            body: images::jpeg(64, 64, 1),
            interval: Duration::from_millis(5),
        },
    );
    let running = unique("cancel-r");
    post(
        &fleet,
        &json!({"job_id": running, "images": [
            {"id": "slow", "label": "a", "url": slow},
            {"id": "fast", "label": "a", "url": server.image("/fast.jpg", "image/jpeg", images::jpeg(64, 64, 2))}
        ]}),
    )
    .await;
    fleet.add_worker();
    fleet
        .wait_for(&running, LIMIT, |s| s.state == JobState::Running)
        .await;
    let output = zipfleet(&fleet, &["cancel", &running]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with(&format!(
            "job {running} is running: asked to stop at its next image"
        )),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        fleet.wait_final(&running, LIMIT).await.state,
        JobState::Cancelled
    );
}

/// The receipt's count for one kind (a line `  <kind>  <count>`).
fn receipt_line(text: &str, kind: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (label, count) = line.trim().rsplit_once(' ')?;
        (label.trim_end() == kind).then(|| count.parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_a_job_from_the_command_line() {
    let fleet = spawn_fleet(0).await;
    let id = unique("erase");
    post(&fleet, &queued_job(&id, "default", None)).await;

    let output = zipfleet(&fleet, &["erase", &id]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with(&format!("erased job {id}\n")), "{text}");
    assert_eq!(receipt_line(&text, "statuses"), Some(1), "{text}");
    assert_eq!(receipt_line(&text, "zips"), Some(0), "{text}");
    assert_eq!(receipt_line(&text, "dead letters"), Some(0), "{text}");
    assert_eq!(
        fleet
            .call(Method::GET, &format!("/v1/jobs/{id}"))
            .await
            .status(),
        404,
        "gone after the erasure"
    );

    // Twice: the job is unknown now.
    let output = zipfleet(&fleet, &["erase", &id]).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("404 Not Found"),
        "{}",
        stderr(&output)
    );
    // Neither a job nor a project, or both: refused before any request.
    assert!(!zipfleet(&fleet, &["erase"]).await.status.success());
    assert!(!zipfleet(&fleet, &["erase", &id, "--project", "p"])
        .await
        .status
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_a_project_from_the_command_line() {
    let fleet = spawn_fleet(0).await;
    // A space and a slash: the project id must travel as one URL segment.
    let project = format!("class 7b/{}", unique("p"));
    let ids = [unique("project"), unique("project")];
    for id in &ids {
        post(&fleet, &queued_job(id, "default", Some(&project))).await;
    }
    let bystander = unique("bystander");
    post(
        &fleet,
        &queued_job(&bystander, "default", Some(&format!("{project}-other"))),
    )
    .await;

    let output = zipfleet(&fleet, &["erase", "--project", &project]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let first_line = text.lines().next().unwrap_or_default();
    assert!(
        first_line.starts_with(&format!("erased project {project:?}: 2 jobs (")),
        "{text}"
    );
    for id in &ids {
        assert!(first_line.contains(id.as_str()), "{text}");
        assert_eq!(
            fleet
                .call(Method::GET, &format!("/v1/jobs/{id}"))
                .await
                .status(),
            404
        );
    }
    assert_eq!(receipt_line(&text, "statuses"), Some(2), "{text}");
    assert_eq!(
        fleet.get_status(&bystander).await.state,
        JobState::Queued,
        "another project is untouched"
    );

    let output = zipfleet(&fleet, &["erase", "--project", &project]).await;
    assert!(!output.status.success(), "nothing left to erase");
    assert!(
        stderr(&output).contains("404 Not Found"),
        "{}",
        stderr(&output)
    );
}
