//! `zipfleet submit`, `zipfleet status` and `zipfleet dlq`: talking to a running zipfleet API.

use crate::progress::{summarize, ProgressView};
use anyhow::{bail, Context};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
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
    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.api_url.trim_end_matches('/'));
        let request = client.request(method, url);
        match &self.api_token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        }
    }
}

pub async fn submit(api: &ApiArgs, job: &Path, wait: bool) -> anyhow::Result<ExitCode> {
    let body = std::fs::read(job).with_context(|| format!("reading {}", job.display()))?;
    let client = reqwest::Client::new();
    let response = api
        .request(&client, reqwest::Method::POST, "/v1/jobs")
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .context("posting the job")?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.context("reading the API's answer")?;
    if !status.is_success() {
        eprintln!("the API refused the job ({status}):");
        eprintln!("{}", serde_json::to_string_pretty(&answer)?);
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

pub async fn status(api: &ApiArgs, job_id: &str, follow: bool) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::new();
    if follow {
        return watch(api, &client, job_id).await;
    }
    let status = fetch_status(api, &client, job_id).await?;
    println!("{}", serde_json::to_string_pretty(&status)?);
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
    let response = api
        .request(client, reqwest::Method::GET, &format!("/v1/jobs/{job_id}"))
        .send()
        .await
        .context("asking for the job's status")?;
    if !response.status().is_success() {
        let code = response.status();
        let text = response.text().await.unwrap_or_default();
        bail!("the API answered {code}: {text}");
    }
    response.json().await.context("reading the job's status")
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
            let listing =
                call(api.request(&client, reqwest::Method::GET, "/v1/dead-letters")).await?;
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
                api.request(&client, reqwest::Method::POST, "/v1/dead-letters/redrive")
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
    let response = request.send().await.context("calling the API")?;
    let status = response.status();
    let text = response.text().await.context("reading the API's answer")?;
    if !status.is_success() {
        bail!("the API answered {status}: {text}");
    }
    serde_json::from_str(&text).context("the API's answer is not JSON")
}
