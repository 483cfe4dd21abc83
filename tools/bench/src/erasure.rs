//! `zipfleet-bench --erase`: erasing a job on the real fleet (issue 23) —
//! how long `DELETE /v1/jobs/{id}` takes for a job of `--images` pictures
//! (half from the object store, half from the bench's web server, the cache
//! on), and how many objects it removes (counted in the store before and
//! after, beside the receipt).

use crate::file_server::start_file_server;
use crate::fleet::{backend_config_named, follow_job, Fleet, FleetBinaries, TOKEN};
use anyhow::{bail, Context};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub struct EraseInput<'a> {
    /// Directory holding the corpus copies, and their keys.
    pub store_dir: &'a Path,
    pub keys: Vec<String>,
    pub images: usize,
    pub rounds: usize,
}

pub fn run(input: EraseInput<'_>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Handle::current();
    let binaries = FleetBinaries::locate()?;
    let name = format!("erase{}", std::process::id());
    let config = backend_config_named(&name);
    let store = runtime
        .block_on(zipfleet_backends::connect_store(&config))
        .context("connecting to the bench's object store")?;
    let port = runtime.block_on(start_file_server(
        input.store_dir.to_path_buf(),
        Arc::default(),
    ))?;
    for key in input.keys.iter().take(input.images) {
        let bytes = std::fs::read(input.store_dir.join(key))?;
        runtime.block_on(store.put_bytes(&format!("{name}/{key}"), bytes.into(), "image/*"))?;
    }
    let fleet = Fleet::start(&runtime, &binaries, &config, 1, true)?;
    println!(
        "# zipfleet bench --erase ({} images a job, {} rounds)\n",
        input.images, input.rounds
    );
    println!("| round | erase, s | objects removed (store, before − after) | receipt |");
    println!("|---|---|---|---|");
    let mut times = Vec::new();
    for round in 0..input.rounds.max(1) {
        let images: Vec<serde_json::Value> = input
            .keys
            .iter()
            .cycle()
            .take(input.images)
            .enumerate()
            .map(|(i, key)| {
                if i % 2 == 0 {
                    serde_json::json!({"id": format!("i{i}"), "label": format!("l{}", i % 4), "object": {"key": format!("{name}/{key}")}})
                } else {
                    serde_json::json!({"id": format!("i{i}"), "label": format!("l{}", i % 4), "url": format!("http://127.0.0.1:{port}/{key}")})
                }
            })
            .collect();
        let job_id = format!("{name}-{round}");
        let body = serde_json::json!({"job_id": job_id, "images": images});
        runtime.block_on(follow_job(
            &fleet.client,
            &fleet.api_url,
            body,
            Instant::now(),
        ))?;
        let count = || runtime.block_on(store.list_keys(&store.own_key("")));
        let before = count()?.len();
        let started = Instant::now();
        let response = runtime.block_on(
            fleet
                .client
                .delete(format!("{}/v1/jobs/{job_id}", fleet.api_url))
                .bearer_auth(TOKEN)
                .send(),
        )?;
        let took = started.elapsed().as_secs_f64();
        if !response.status().is_success() {
            bail!("erasing {job_id}: {}", response.status());
        }
        let receipt: serde_json::Value = runtime.block_on(response.json())?;
        let after = count()?.len();
        times.push(took);
        println!(
            "| {} | {took:.2} | {} | {} |",
            round + 1,
            before.saturating_sub(after),
            receipt["erased"]
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "\nerase time min / median / max: {:.2} / **{:.2}** / {:.2} s",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    Ok(())
}
