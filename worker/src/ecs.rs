//! Amazon ECS task scale-in protection. When `ECS_AGENT_URI` is set (ECS
//! sets it in every task), the worker asks its agent to protect the task
//! while it runs a job, so a scale-in picks an idle task instead of killing
//! one mid-job, and drops the protection when it goes idle.
//!
//! The worker loop only says "busy" or "idle" ([`Protection::set_busy`]);
//! a background task makes the agent calls (`PUT
//! $ECS_AGENT_URI/task-protection/v1/state`), renews the protection before it
//! expires while busy, and logs agent errors — a failing agent never delays
//! or fails a job.

use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long one protection lasts. Longer than any job is expected to take;
/// renewed every [`RENEW_EVERY`] while the worker stays busy, so a crashed
/// worker's protection lapses within this.
pub(crate) const PROTECTION_MINUTES: u64 = 60;
/// Renewal period while busy (well inside [`PROTECTION_MINUTES`]).
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(15 * 60);
/// A refused or failed agent call is tried again after this.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(30);
/// One agent call may take this long.
const AGENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The worker's handle on scale-in protection (a no-op off ECS).
#[derive(Debug)]
pub struct Protection {
    busy: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Protection {
    /// Protection through the agent at `agent_uri`, or none when `None`.
    pub(crate) fn new(agent_uri: Option<String>) -> Self {
        let (busy, changes) = watch::channel(false);
        let task = agent_uri
            .filter(|uri| !uri.is_empty())
            .map(|uri| tokio::spawn(drive(uri, changes, RENEW_EVERY)));
        Self { busy, task }
    }

    /// From the environment (`ECS_AGENT_URI`).
    pub(crate) fn from_env() -> Self {
        Self::new(std::env::var("ECS_AGENT_URI").ok())
    }

    /// For tests: a custom renewal period.
    pub fn with_renewal(agent_uri: String, renew_every: Duration) -> Self {
        let (busy, changes) = watch::channel(false);
        Self {
            busy,
            task: Some(tokio::spawn(drive(agent_uri, changes, renew_every))),
        }
    }

    /// Whether the worker runs at least one job now. Cheap; call on every change.
    pub fn set_busy(&self, busy: bool) {
        self.busy
            .send_if_modified(|current| std::mem::replace(current, busy) != busy);
    }
}

impl Drop for Protection {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn drive(agent_uri: String, mut changes: watch::Receiver<bool>, renew_every: Duration) {
    let client = match reqwest::Client::builder().timeout(AGENT_TIMEOUT).build() {
        Ok(client) => client,
        Err(err) => {
            tracing::warn!(%err, "ECS scale-in protection disabled: no HTTP client");
            return;
        }
    };
    let url = format!(
        "{}/task-protection/v1/state",
        agent_uri.trim_end_matches('/')
    );
    tracing::info!("ECS detected: protecting this task from scale-in while it runs jobs");
    let mut protected = false;
    loop {
        let busy = *changes.borrow_and_update();
        // Busy: turn on, or renew; idle: turn off if it is on.
        let accepted = if busy || protected {
            set_protection(&client, &url, busy).await
        } else {
            true
        };
        if accepted {
            protected = busy;
        }
        let wait = if !accepted {
            RETRY_AFTER_ERROR
        } else if busy {
            renew_every
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One agent call; `true` when the agent accepted it.
async fn set_protection(client: &reqwest::Client, url: &str, enabled: bool) -> bool {
    let body = if enabled {
        json!({"ProtectionEnabled": true, "ExpiresInMinutes": PROTECTION_MINUTES})
    } else {
        json!({"ProtectionEnabled": false})
    };
    let answer = client.put(url).json(&body).send().await;
    let problem = match answer {
        Ok(response) if response.status().is_success() => {
            // The agent reports some failures inside a 200 as {"error": ...}.
            match response.json::<serde_json::Value>().await {
                Ok(value) if value.get("error").is_some_and(|e| !e.is_null()) => {
                    Some(value["error"].to_string())
                }
                _ => None,
            }
        }
        Ok(response) => Some(format!("the ECS agent answered {}", response.status())),
        Err(err) => Some(format!("the ECS agent could not be reached: {err}")),
    };
    match problem {
        None => {
            tracing::debug!(enabled, "ECS task protection set");
            true
        }
        Some(problem) => {
            tracing::warn!(enabled, %problem, "could not set ECS task scale-in protection; jobs carry on");
            false
        }
    }
}
