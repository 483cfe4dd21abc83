//! `zipfleet`: run a job in-process (`run`), or submit, watch, cancel and
//! erase jobs through the API (`submit`, `status`, `cancel`, `erase`, `dlq`). The benchmarks are a separate tool
//! (tools/bench, `zipfleet-bench`), not part of this binary.

mod progress;
mod remote;
mod run;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc returns freed memory to the OS; measured against glibc malloc and
/// mimalloc it gives the lowest peak RSS under the memory budget.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser, Debug)]
#[command(
    name = "zipfleet",
    version,
    about = "Build resized image training-set zips"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one job in this process: in-process queue and worker, a directory as the store.
    Run(Box<run::RunArgs>),
    /// Post a job to the zipfleet API.
    Submit {
        /// The job spec (JSON).
        job: PathBuf,
        /// Wait for the job to end, showing progress.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        api: remote::ApiArgs,
    },
    /// Show a job's status from the zipfleet API: its tenant, and while it is queued its place in line.
    Status {
        job_id: String,
        /// Follow the job until it ends, showing its place in line, then its progress.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
        /// Print the status document (JSON) instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: remote::ApiArgs,
    },
    /// Cancel a queued or running job through the API; its status stays readable.
    Cancel {
        job_id: String,
        #[command(flatten)]
        api: remote::ApiArgs,
    },
    /// Erase a job, or every job of a project, and everything derived from its pictures (zip, cache, status).
    Erase {
        /// The job to erase.
        #[arg(required_unless_present = "project", conflicts_with = "project")]
        job_id: Option<String>,
        /// Erase every job of this project instead.
        #[arg(long, value_name = "PROJECT_ID")]
        project: Option<String>,
        #[command(flatten)]
        api: remote::ApiArgs,
    },
    /// List the dead-letter queue or move its messages back to the jobs queue (through the API).
    Dlq {
        #[command(subcommand)]
        command: remote::DlqCommand,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(*args).await,
        Command::Submit { job, wait, api } => remote::submit(&api, &job, wait).await,
        Command::Status {
            job_id,
            watch,
            json,
            api,
        } => remote::status(&api, &job_id, watch, json).await,
        Command::Cancel { job_id, api } => remote::cancel(&api, &job_id).await,
        Command::Erase {
            job_id,
            project,
            api,
        } => {
            let target = match (job_id, project) {
                (_, Some(project)) => remote::EraseTarget::Project(project),
                (Some(job_id), None) => remote::EraseTarget::Job(job_id),
                (None, None) => unreachable!("clap requires a job id or --project"),
            };
            remote::erase(&api, target).await
        }
        Command::Dlq { command } => remote::dlq(command).await,
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("zipfleet: {err:#}");
            ExitCode::from(2)
        }
    }
}
