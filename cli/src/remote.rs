//! `zipfleet submit`, `status`, `cancel`, `erase` and `dlq`: talking to a running zipfleet API.

use crate::progress::{describe, summarize, ProgressView};
use anyhow::{anyhow, bail, Context};
use reqwest::{Method, StatusCode};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use zipfleet_shared::erase::{Erased, JobErased, ProjectErased};
use zipfleet_shared::secret::Secret;
use zipfleet_shared::status::JobStatus;

#[derive(clap::Args, Debug)]
pub struct ApiArgs {
    /// Base URL of the zipfleet API.
    #[arg(
        long,
        env = "ZIPFLEET_API_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    api_url: String,
    /// Bearer token for the API.
    #[arg(long, env = "ZIPFLEET_API_TOKEN", hide_env_values = true)]
    api_token: Option<Secret>,
}

impl ApiArgs {
    /// A request to the route made of `segments` (each percent-encoded, so a
    /// project id with `/` or spaces stays one segment), with the token.
    fn request(
        &self,
        client: &reqwest::Client,
        method: Method,
        segments: &[&str],
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let mut url = reqwest::Url::parse(&self.api_url)
            .with_context(|| format!("the API URL {:?} is not a URL", self.api_url))?;
        url.path_segments_mut()
            .map_err(|()| anyhow!("the API URL {:?} cannot have a path", self.api_url))?
            .pop_if_empty()
            .extend(segments);
        let request = client.request(method, url);
        Ok(match &self.api_token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        })
    }
}

pub async fn submit(api: &ApiArgs, job: &Path, wait: bool) -> anyhow::Result<ExitCode> {
    let body = std::fs::read(job).with_context(|| format!("reading {}", job.display()))?;
    let client = reqwest::Client::new();
    let response = api
        .request(&client, Method::POST, &["v1", "jobs"])?
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .context("posting the job")?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let answer: serde_json::Value = response.json().await.context("reading the API's answer")?;
    if !status.is_success() {
        eprintln!("the API refused the job ({status}):");
        eprintln!("{}", serde_json::to_string_pretty(&answer)?);
        if let Some(after) = retry_after {
            eprintln!("try again in {after} s");
        }
        return Ok(ExitCode::from(2));
    }
    let job_id = answer["job_id"]
        .as_str()
        .context("the API's answer has no job_id")?
        .to_string();
    println!(
        "job {job_id} {}",
        answer["state"].as_str().unwrap_or("queued")
    );
    if wait {
        return watch(api, &client, &job_id).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// `zipfleet status`: the job in a few lines (while queued, its place in
/// line), the status document with `json`, or the job followed to its end.
pub async fn status(
    api: &ApiArgs,
    job_id: &str,
    follow: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::new();
    if follow {
        return watch(api, &client, job_id).await;
    }
    let status = fetch_status(api, &client, job_id).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else if status.state.is_final() {
        println!("{}", describe(&status));
        // The job's outcome is told, not the command's: reading it worked.
        let _ = summarize(&status, None);
    } else {
        println!("{}", describe(&status));
    }
    Ok(ExitCode::SUCCESS)
}

async fn watch(api: &ApiArgs, client: &reqwest::Client, job_id: &str) -> anyhow::Result<ExitCode> {
    let mut view = ProgressView::new();
    loop {
        let status = fetch_status(api, client, job_id).await?;
        view.update(&status);
        if status.state.is_final() {
            view.finish();
            return Ok(summarize(&status, None));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn fetch_status(
    api: &ApiArgs,
    client: &reqwest::Client,
    job_id: &str,
) -> anyhow::Result<JobStatus> {
    let request = api.request(client, Method::GET, &["v1", "jobs", job_id])?;
    let (_, answer) = send(request)
        .await
        .with_context(|| format!("reading job {job_id}"))?;
    serde_json::from_value(answer).context(UNEXPECTED)
}

/// `zipfleet cancel`: a queued job is cancelled at once, a running one stops
/// at its next image; either way its status stays readable.
pub async fn cancel(api: &ApiArgs, job_id: &str) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::new();
    let request = api.request(&client, Method::POST, &["v1", "jobs", job_id, "cancel"])?;
    let (code, answer) = send(request)
        .await
        .with_context(|| format!("cancelling job {job_id}"))?;
    let status: JobStatus = serde_json::from_value(answer).context(UNEXPECTED)?;
    if code == StatusCode::ACCEPTED {
        println!(
            "job {} is running: asked to stop at its next image (`zipfleet status {} --watch` follows it)",
            status.job_id, status.job_id
        );
    } else {
        println!("job {} cancelled", status.job_id);
    }
    Ok(ExitCode::SUCCESS)
}

/// What `zipfleet erase` erases.
pub enum EraseTarget {
    Job(String),
    Project(String),
}

/// `zipfleet erase`: a job, or every job of a project, and everything
/// derived from its pictures; prints the receipt.
pub async fn erase(api: &ApiArgs, target: EraseTarget) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::new();
    match target {
        EraseTarget::Job(job_id) => {
            let request = api.request(&client, Method::DELETE, &["v1", "jobs", &job_id])?;
            let (_, answer) = send(request)
                .await
                .with_context(|| format!("erasing job {job_id}"))?;
            let receipt: JobErased = serde_json::from_value(answer).context(UNEXPECTED)?;
            println!("erased job {}", receipt.job_id);
            print_erased(&receipt.erased);
        }
        EraseTarget::Project(project_id) => {
            let request = api.request(&client, Method::DELETE, &["v1", "projects", &project_id])?;
            let (_, answer) = send(request)
                .await
                .with_context(|| format!("erasing project {project_id:?}"))?;
            let receipt: ProjectErased = serde_json::from_value(answer).context(UNEXPECTED)?;
            let jobs = receipt.job_ids.len();
            println!(
                "erased project {:?}: {jobs} job{} ({})",
                receipt.project_id,
                if jobs == 1 { "" } else { "s" },
                receipt.job_ids.join(", ")
            );
            print_erased(&receipt.erased);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The receipt, one kind a line (what was deleted, by kind: every version of
/// a zip, cache entries derived from the pictures, stored specs, statuses
/// with their idempotency records, dead letters).
fn print_erased(erased: &Erased) {
    for (kind, count) in [
        ("zips", erased.zips),
        ("cache entries", erased.cache_entries),
        ("specs", erased.specs),
        ("statuses", erased.statuses),
        ("dead letters", erased.dead_letters),
    ] {
        println!("  {kind:<14}{count:>6}");
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum DlqCommand {
    /// Show the messages in the dead-letter queue (the first 100), with why each is there.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Move dead letters back to the jobs queue (all of them, up to 10,000, without --max).
    Redrive {
        /// Move at most this many.
        #[arg(long)]
        max: Option<u32>,
        #[command(flatten)]
        api: ApiArgs,
    },
}

pub async fn dlq(command: DlqCommand) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::new();
    match command {
        DlqCommand::List { api } => {
            let listing = call(api.request(&client, Method::GET, &["v1", "dead-letters"])?).await?;
            let messages = listing["messages"].as_array().cloned().unwrap_or_default();
            println!(
                "{} message(s) in the dead-letter queue",
                listing["depth"].as_u64().unwrap_or(messages.len() as u64)
            );
            for message in &messages {
                let text = |key: &str| message[key].as_str().unwrap_or("-").to_string();
                println!(
                    "{}\tjob {}\t{}\t{}",
                    text("id"),
                    text("job_id"),
                    text("reason"),
                    text("preview").replace(['\n', '\r', '\t'], " ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Redrive { max, api } => {
            let body = match max {
                Some(max) => serde_json::json!({ "max": max }),
                None => serde_json::json!({}),
            };
            let answer = call(
                api.request(&client, Method::POST, &["v1", "dead-letters", "redrive"])?
                    .json(&body),
            )
            .await?;
            let moved = answer["moved"]
                .as_u64()
                .context("the API's answer has no count")?;
            println!(
                "moved {moved} message{} back to the jobs queue",
                if moved == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Send a request; a non-success answer is an error carrying the API's message.
async fn call(request: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
    Ok(send(request).await?.1)
}

/// When an answer is JSON but not the shape the route documents.
const UNEXPECTED: &str = "the API's answer is not what was expected";

/// Send a request and read its JSON answer. A non-success answer is an error
/// saying what the API said (its message and code), and when to retry if
/// it said that too.
async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let response = request.send().await.context("calling the API")?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let text = response.text().await.context("reading the API's answer")?;
    if !status.is_success() {
        let error: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let said = match (
            error["error"]["message"].as_str(),
            error["error"]["code"].as_str(),
        ) {
            (Some(message), Some(code)) => format!("{message} ({code})"),
            _ => text,
        };
        match retry_after {
            Some(after) => bail!("the API answered {status}: {said}; try again in {after} s"),
            None => bail!("the API answered {status}: {said}"),
        }
    }
    let answer = serde_json::from_str(&text).context("the API's answer is not JSON")?;
    Ok((status, answer))
}
