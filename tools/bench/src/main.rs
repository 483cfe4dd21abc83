//! `zipfleet-bench`: zipfleet's benchmarks, outside the shipped binaries.
//!
//! - [`bench`]: the flags; one core against libvips and GraphicsMagick (P1,
//!   P2, accuracy) and the re-train (`--retrain`).
//! - [`burst`]: the classroom bursts on the real fleet (`--burst`, with
//!   `--pool N` or `--cold` for the cache).
//! - [`fairness`]: fair share on the fleet (`--fairness`).
//! - [`search`]: job search through the API over many jobs (`--search N`).
//! - [`erasure`]: erasing a job on the fleet (`--erase`).
//! - [`fleet`]: starting the API and worker processes, following a job.
//! - [`file_server`]: the loopback web server of the "web" images.
//! - [`process`]: the binaries built next to this one, and measuring them.
//!
//! Build every binary first (`cargo build --release --bins`): the bench runs
//! `zipfleet run`, `zipfleet-api` and `zipfleet-worker` from its own directory.

mod bench;
mod burst;
mod erasure;
mod fairness;
mod file_server;
mod fleet;
mod process;
mod search;

use clap::Parser;
use std::process::ExitCode;

/// Measure zipfleet's speed and memory side by side with libvips and
/// GraphicsMagick, the cache's re-train, and the classroom burst on the fleet.
#[derive(Parser, Debug)]
#[command(name = "zipfleet-bench", version)]
struct Cli {
    #[command(flatten)]
    bench: bench::BenchArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The bench blocks on child processes; the runtime serves its web server
    // and the bursts' HTTP clients meanwhile.
    let result = tokio::task::spawn_blocking(move || bench::run(cli.bench))
        .await
        .unwrap_or_else(|err| Err(err.into()));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("zipfleet-bench: {err:#}");
            ExitCode::from(2)
        }
    }
}
