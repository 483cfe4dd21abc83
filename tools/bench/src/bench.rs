//! `zipfleet-bench --corpus DIR`: zipfleet's speed and memory measured side
//! by side with libvips (`vipsthumbnail`) and GraphicsMagick (`gm`) in one
//! run, on the same files, pinned to the same core. Its flags, and the
//! dispatch to the re-train (`--retrain`) and the bursts (`--burst`,
//! [`crate::burst`]).
//!
//! - **P1 per-core throughput**: for each format subset of the corpus (JPEG,
//!   PNG, WebP, all), a whole `zipfleet run` of one job holding the subset
//!   (objects in a `file://` store, zip written; the `zipfleet` binary built
//!   next to this one) against `vipsthumbnail` and
//!   `gm mogrify` over the same files, each pinned with `taskset -c CORE`,
//!   several rounds interleaved; min/median/max wall time, ratios of medians,
//!   and zipfleet's peak RSS (from `wait4`).
//! - **P2 scaling**: the whole corpus on one core against all cores.
//! - **Accuracy**: zipfleet's and libvips' results as PNG (lossless), decoded
//!   and compared: mean absolute difference per channel.
//!
//! It fetches nothing: take the corpus from `tools/corpus/fetch.sh DIR`.

use crate::file_server::{start_file_server, RequestLog};
use crate::process::{children_cpu, measure, sibling_binary, Measured};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Directory of images (e.g. from `tools/corpus/fetch.sh DIR`); every
    /// measurement but `--fairness` and `--search` needs it.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Rounds per measurement; medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The core every single-core run is pinned to (`taskset -c`).
    #[arg(long, default_value = "1")]
    core: String,
    /// Output width and height.
    #[arg(long, default_value_t = 224)]
    size: u32,
    /// Where to put the copies and outputs (default: a temporary directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Run the classroom burst on the real fleet (API and worker processes,
    /// RabbitMQ or SQS, Redis, S3) instead of the one-core comparison;
    /// `infra/bench-burst.sh` starts the services.
    #[arg(long)]
    burst: bool,
    /// Burst: jobs posted at once.
    #[arg(long, default_value_t = 30)]
    jobs: usize,
    /// Burst: images in each job.
    #[arg(long, default_value_t = 40)]
    images: usize,
    /// Burst: worker processes.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Burst: the jobs draw from a shared pool of this many pictures (each
    /// job a different mix), run with the cache off and on (issue 16).
    #[arg(long)]
    pool: Option<usize>,
    /// Burst: every picture of every job distinct, cache off against on
    /// (the cache's cold cost).
    #[arg(long)]
    cold: bool,
    /// The re-train: one 40-image job (half objects, half from a loopback
    /// web server) through `zipfleet run`, then again with a new job id.
    #[arg(long)]
    retrain: bool,
    /// Fair share on the fleet (issue 22): tenant A's 60 jobs, then B's 3,
    /// fair against one lane (first come, first served); no corpus needed.
    #[arg(long)]
    fairness: bool,
    /// Job search through the API with this many jobs in Redis (issue 24);
    /// no corpus needed.
    #[arg(long)]
    search: Option<usize>,
    /// Erasure on the fleet (issue 23): a `--images`-image job run, then
    /// erased; the time it takes and the objects it removes.
    #[arg(long)]
    erase: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Format {
    Jpeg,
    Png,
    Webp,
}

impl Format {
    fn sniff(path: &Path) -> Option<Self> {
        let mut head = [0u8; 12];
        std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
        match head {
            [0xFF, 0xD8, ..] => Some(Self::Jpeg),
            [0x89, b'P', b'N', b'G', ..] => Some(Self::Png),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P'] => Some(Self::Webp),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::Webp => "WebP",
        }
    }
}

/// One image of the corpus, copied into the bench's store directory.
struct Image {
    id: String,
    format: Format,
    /// Key in the store (= file name).
    key: String,
}

/// min / median / max of a few rounds.
#[derive(Debug, Clone, Copy)]
struct Spread {
    min: f64,
    median: f64,
    max: f64,
}

impl Spread {
    fn of(samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            min: sorted[0],
            median: sorted[sorted.len() / 2],
            max: sorted[sorted.len() - 1],
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} / **{:.2}** / {:.2}",
            self.min, self.median, self.max
        )
    }
}

struct Bench {
    args: BenchArgs,
    exe: PathBuf,
    work: PathBuf,
    store: PathBuf,
    images: Vec<Image>,
    has_vips: bool,
    has_gm: bool,
    has_taskset: bool,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let _temp;
    let work = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            let temp = std::env::temp_dir().join(format!("zipfleet-bench-{}", std::process::id()));
            _temp = TempDirGuard(temp.clone());
            temp
        }
    };
    if args.fairness {
        crate::fairness::run(
            crate::fairness::FairnessInput {
                rounds: args.rounds,
                ..Default::default()
            },
            &work,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(jobs) = args.search {
        crate::search::run(jobs, args.rounds)?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(corpus) = args.corpus.clone() else {
        bail!("--corpus DIR is needed (fetch it with tools/corpus/fetch.sh DIR)");
    };
    let store = work.join("store");
    std::fs::create_dir_all(&store)?;
    let images = copy_corpus(&corpus, &store)?;
    if images.is_empty() {
        bail!(
            "no JPEG, PNG or WebP images in {} (fetch them with tools/corpus/fetch.sh DIR)",
            corpus.display()
        );
    }
    let bench = Bench {
        exe: sibling_binary("zipfleet")?,
        work,
        store,
        images,
        has_vips: installed("vipsthumbnail", "--version"),
        has_gm: installed("gm", "version"),
        has_taskset: installed("taskset", "--version"),
        args,
    };
    if bench.args.retrain {
        bench.retrain()?;
    } else if bench.args.erase {
        crate::erasure::run(crate::erasure::EraseInput {
            store_dir: &bench.store,
            keys: bench.images.iter().map(|image| image.key.clone()).collect(),
            images: bench.args.images,
            rounds: bench.args.rounds,
        })?;
    } else if bench.args.burst && (bench.args.pool.is_some() || bench.args.cold) {
        println!("# zipfleet bench --burst (cache)");
        crate::burst::run_cache(crate::burst::CacheBurstInput {
            store_dir: &bench.store,
            keys: bench.images.iter().map(|image| image.key.clone()).collect(),
            jobs: bench.args.jobs,
            images_per_job: bench.args.images,
            workers: bench.args.workers,
            size: bench.args.size,
            rounds: bench.args.rounds,
            pool: if bench.args.cold {
                None
            } else {
                bench.args.pool
            },
        })?;
    } else if bench.args.burst {
        bench.burst()?;
    } else {
        bench.report()?;
    }
    Ok(ExitCode::SUCCESS)
}

struct TempDirGuard(PathBuf);

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn installed(program: &str, version_flag: &str) -> bool {
    Command::new(program)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn copy_corpus(corpus: &Path, store: &Path) -> anyhow::Result<Vec<Image>> {
    let mut files = Vec::new();
    collect_files(corpus, &mut files)?;
    files.sort();
    let mut images = Vec::new();
    for (index, path) in files.iter().enumerate() {
        let Some(format) = Format::sniff(path) else {
            continue;
        };
        let extension = match format {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
        };
        let id = format!("img{index:04}");
        let key = format!("{id}.{extension}");
        let target = store.join(&key);
        if !target.exists() {
            std::fs::copy(path, &target).with_context(|| format!("copying {}", path.display()))?;
        }
        images.push(Image { id, format, key });
    }
    Ok(images)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// A zip's picture entries (name → bytes), without the manifest.
fn zip_pictures(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path)?)?;
    let mut out = BTreeMap::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        if entry.name() == "manifest.json" {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        out.insert(entry.name().to_string(), bytes);
    }
    Ok(out)
}

impl Bench {
    fn pinned(&self, program: impl AsRef<std::ffi::OsStr>, pin: bool) -> Command {
        if pin && self.has_taskset {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(&self.args.core).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn subset(&self, format: Option<Format>) -> Vec<&Image> {
        self.images
            .iter()
            .filter(|image| format.is_none_or(|wanted| image.format == wanted))
            .collect()
    }

    /// Write the job spec for `images` and return its path.
    fn job_file(&self, name: &str, images: &[&Image], format: &str) -> anyhow::Result<PathBuf> {
        let list: Vec<_> = images.iter().map(|image| serde_json::json!({"id": image.id, "label": "corpus", "object": {"key": image.key}})).collect();
        let spec = serde_json::json!({
            "job_id": format!("bench-{name}"),
            "images": list,
            "output": {"width": self.args.size, "height": self.args.size, "fit": "fill", "format": format, "quality": 90},
            "on_image_error": "fail",
        });
        let path = self.work.join(format!("job-{name}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
        Ok(path)
    }

    /// One `zipfleet run` with the cache off: these runs measure rendering,
    /// and every round would otherwise be served from the first one's cache.
    fn zipfleet(&self, job: &Path, out: &Path, pin: bool) -> anyhow::Result<Measured> {
        let mut command = self.pinned(&self.exe, pin);
        command
            .env("ZIPFLEET_CACHE", "off")
            .arg("run")
            .arg(job)
            .arg("--store")
            .arg(&self.store)
            .arg("--out")
            .arg(out);
        measure(&mut command)
    }

    /// The re-train target (issue 16): the same 40-image job, half objects
    /// and half URLs of a loopback web server, through `zipfleet run` on a
    /// fresh store, then again with a new job id. CPU = the child's user +
    /// sys (this process's `cutime + cstime` from `/proc/self/stat` around
    /// the run).
    fn retrain(&self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Handle::current();
        let log = std::sync::Arc::new(RequestLog::default());
        let port = runtime.block_on(start_file_server(self.store.clone(), log.clone()))?;
        let chosen: Vec<&Image> = self.images.iter().cycle().take(self.args.images).collect();
        let rounds = self.args.rounds.max(1);
        let (
            mut cold_wall,
            mut warm_wall,
            mut cold_cpu,
            mut warm_cpu,
            mut wall_ratio,
            mut cpu_ratio,
        ) = (vec![], vec![], vec![], vec![], vec![], vec![]);
        let mut warm_requests = 0;
        let mut identical = true;
        for round in 0..rounds {
            let store = self.work.join(format!("retrain-{round}"));
            let _ = std::fs::remove_dir_all(&store);
            std::fs::create_dir_all(&store)?;
            let list: Vec<serde_json::Value> = chosen
                .iter()
                .enumerate()
                .map(|(i, image)| {
                    if i % 2 == 0 {
                        let target = store.join(&image.key);
                        if !target.exists() {
                            std::fs::copy(self.store.join(&image.key), &target)?;
                        }
                        Ok(serde_json::json!({"id": format!("i{i}"), "label": "stored", "object": {"key": image.key}}))
                    } else {
                        Ok(serde_json::json!({"id": format!("i{i}"), "label": "web", "url": format!("http://127.0.0.1:{port}/{}?v=r{round}", image.key)}))
                    }
                })
                .collect::<anyhow::Result<_>>()?;
            let mut runs = Vec::new();
            for phase in ["cold", "warm"] {
                let job = self.work.join(format!("job-retrain-{phase}.json"));
                let spec = serde_json::json!({
                    "job_id": format!("retrain-{phase}-{round}"),
                    "images": list,
                    "output": {"width": self.args.size, "height": self.args.size, "fit": "fill", "format": "jpeg", "quality": 90},
                });
                std::fs::write(&job, serde_json::to_vec(&spec)?)?;
                let out = self.work.join(format!("retrain-{phase}.zip"));
                let requests = log.total();
                let cpu_before = children_cpu()?;
                let mut command = Command::new(&self.exe);
                command
                    .env("ZIPFLEET_ALLOWED_SOURCE_NETS", "127.0.0.1/32")
                    .arg("run")
                    .arg(&job)
                    .arg("--store")
                    .arg(&store)
                    .arg("--out")
                    .arg(&out);
                let measured = measure(&mut command)?;
                let cpu = children_cpu()? - cpu_before;
                runs.push((
                    measured.wall.as_secs_f64(),
                    cpu,
                    log.total() - requests,
                    zip_pictures(&out)?,
                ));
            }
            let (cold, warm) = (&runs[0], &runs[1]);
            cold_wall.push(cold.0);
            warm_wall.push(warm.0);
            cold_cpu.push(cold.1);
            warm_cpu.push(warm.1);
            wall_ratio.push(warm.0 / cold.0);
            cpu_ratio.push(warm.1 / cold.1.max(1e-9));
            warm_requests += warm.2;
            identical &= cold.3 == warm.3;
        }
        let pct = |s: Spread| {
            format!(
                "{:.1} / **{:.1}** / {:.1} %",
                s.min * 100.0,
                s.median * 100.0,
                s.max * 100.0
            )
        };
        println!("# zipfleet bench --retrain");
        println!();
        println!(
            "## Cache — re-train: one {}-image job ({} objects, {} URLs of a loopback server) through `zipfleet run`, then again with a new job id; {rounds} rounds, a fresh store each",
            chosen.len(),
            chosen.len().div_ceil(2),
            chosen.len() / 2
        );
        println!();
        println!("| | cold | re-train | re-train ÷ cold |");
        println!("|---|---|---|---|");
        println!(
            "| wall, s (min / **median** / max) | {} | {} | {} |",
            Spread::of(&cold_wall),
            Spread::of(&warm_wall),
            pct(Spread::of(&wall_ratio))
        );
        println!(
            "| CPU user+sys, s | {} | {} | {} |",
            Spread::of(&cold_cpu),
            Spread::of(&warm_cpu),
            pct(Spread::of(&cpu_ratio))
        );
        println!();
        println!(
            "Web requests during the re-trains: {warm_requests}; zip entries identical to the cold run's: {}. Targets: CPU ≤ 8%, wall ≤ 20%, no requests, identical.",
            if identical { "yes" } else { "NO" }
        );
        Ok(())
    }

    fn vips(&self, images: &[&Image], extension: &str) -> anyhow::Result<Measured> {
        let out = self.work.join(format!("vips-{extension}"));
        std::fs::create_dir_all(&out)?;
        let mut command = self.pinned("vipsthumbnail", true);
        command
            .env("VIPS_CONCURRENCY", "1")
            .arg("-s")
            .arg(format!("{0}x{0}!", self.args.size));
        let pattern = if extension == "jpg" {
            "%s.jpg[Q=90]".to_string()
        } else {
            format!("%s.{extension}")
        };
        command.arg("-o").arg(out.join(pattern));
        command.args(images.iter().map(|image| self.store.join(&image.key)));
        measure(&mut command)
    }

    fn gm(&self, images: &[&Image]) -> anyhow::Result<Measured> {
        let out = self.work.join("gm");
        std::fs::create_dir_all(&out)?;
        let mut command = self.pinned("gm", true);
        command
            .env("OMP_NUM_THREADS", "1")
            .arg("mogrify")
            .arg("-output-directory")
            .arg(&out);
        command
            .arg("-resize")
            .arg(format!("{0}x{0}!", self.args.size))
            .arg("-quality")
            .arg("90")
            .arg("-format")
            .arg("jpg");
        // mogrify joins -output-directory with each input path as given, so the
        // inputs are named relative to the store.
        command
            .current_dir(&self.store)
            .args(images.iter().map(|image| &image.key));
        measure(&mut command)
    }

    fn burst(&self) -> anyhow::Result<()> {
        println!("# zipfleet bench --burst");
        crate::burst::run(crate::burst::BurstInput {
            store_dir: &self.store,
            keys: self.images.iter().map(|image| image.key.clone()).collect(),
            jobs: self.args.jobs,
            images_per_job: self.args.images,
            workers: self.args.workers,
            work: &self.work,
            size: self.args.size,
            rounds: self.args.rounds,
            one_job_one_core: Box::new(|job| {
                let out = self.work.join("burst-floor.zip");
                let rounds = (0..self.args.rounds.max(1))
                    .map(|_| self.zipfleet(job, &out, true).map(|m| m.wall))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let mut sorted = rounds;
                sorted.sort();
                Ok(sorted[sorted.len() / 2])
            }),
        })
    }

    fn report(&self) -> anyhow::Result<()> {
        let rounds = self.args.rounds.max(1);
        println!("# zipfleet bench");
        println!();
        println!(
            "{} images from {} ({} JPEG, {} PNG, {} WebP) to {}×{} JPEG (q90, fill); {} rounds, single-core runs pinned with `taskset -c {}`{}.",
            self.images.len(),
            self.args.corpus.as_deref().unwrap_or(Path::new("?")).display(),
            self.subset(Some(Format::Jpeg)).len(),
            self.subset(Some(Format::Png)).len(),
            self.subset(Some(Format::Webp)).len(),
            self.args.size,
            self.args.size,
            rounds,
            self.args.core,
            if self.has_taskset { "" } else { " (taskset missing: NOT pinned)" }
        );
        if !self.has_vips {
            println!("\nvipsthumbnail is not installed (`apt-get install -y libvips-tools`): no libvips column.");
        }
        if !self.has_gm {
            println!("\ngm is not installed (`apt-get install -y graphicsmagick`): no GraphicsMagick column.");
        }
        println!();
        println!("## P1 — one core, seconds (min / **median** / max)");
        println!();
        println!("| subset | images | zipfleet | vipsthumbnail | gm | zipfleet ÷ vips | gm ÷ zipfleet | zipfleet peak RSS |");
        println!("|---|---|---|---|---|---|---|---|");
        let subsets = [
            Some(Format::Jpeg),
            Some(Format::Png),
            Some(Format::Webp),
            None,
        ];
        for format in subsets {
            let images = self.subset(format);
            if images.is_empty() {
                continue;
            }
            let name = format.map_or("all", Format::name);
            let job = self.job_file(&name.to_lowercase(), &images, "jpeg")?;
            let out = self.work.join(format!("{}.zip", name.to_lowercase()));
            let mut times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
            let mut peak_rss = 0;
            for _ in 0..rounds {
                let ours = self.zipfleet(&job, &out, true)?;
                peak_rss = peak_rss.max(ours.max_rss_kib);
                times
                    .entry("zipfleet")
                    .or_default()
                    .push(ours.wall.as_secs_f64());
                if self.has_vips {
                    times
                        .entry("vips")
                        .or_default()
                        .push(self.vips(&images, "jpg")?.wall.as_secs_f64());
                }
                if self.has_gm {
                    times
                        .entry("gm")
                        .or_default()
                        .push(self.gm(&images)?.wall.as_secs_f64());
                }
            }
            let ours = Spread::of(&times["zipfleet"]);
            let vips = times.get("vips").map(|t| Spread::of(t));
            let gm = times.get("gm").map(|t| Spread::of(t));
            println!(
                "| {name} | {} | {ours} | {} | {} | {} | {} | {:.0} MiB |",
                images.len(),
                vips.map_or("–".into(), |s| s.to_string()),
                gm.map_or("–".into(), |s| s.to_string()),
                vips.map_or("–".into(), |s| format!(
                    "**{:.2}×**",
                    ours.median / s.median
                )),
                gm.map_or("–".into(), |s| format!(
                    "**{:.1}×**",
                    s.median / ours.median
                )),
                peak_rss as f64 / 1024.0
            );
        }
        println!();
        println!("Targets: zipfleet ÷ vips ≤ 0.62 (every format below 1.0), gm ÷ zipfleet ≥ 4.");

        let all = self.subset(None);
        let job = self.job_file("all", &all, "jpeg")?;
        let out = self.work.join("scaling.zip");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut one = Vec::new();
        let mut many = Vec::new();
        let mut peak_many = 0;
        for _ in 0..rounds {
            one.push(self.zipfleet(&job, &out, true)?.wall.as_secs_f64());
            let run = self.zipfleet(&job, &out, false)?;
            peak_many = peak_many.max(run.max_rss_kib);
            many.push(run.wall.as_secs_f64());
        }
        let (one, many) = (Spread::of(&one), Spread::of(&many));
        println!();
        println!("## P2 — scaling, whole corpus, seconds (min / **median** / max)");
        println!();
        println!("| 1 core | {cores} cores | speed-up | ideal | peak RSS ({cores} cores) |");
        println!("|---|---|---|---|---|");
        println!(
            "| {one} | {many} | **{:.2}×** | {cores}× | {:.0} MiB |",
            one.median / many.median,
            peak_many as f64 / 1024.0
        );

        if self.has_vips {
            self.accuracy(&all)?;
        }
        Ok(())
    }

    /// zipfleet's and libvips' outputs as PNG, compared pixel by pixel.
    fn accuracy(&self, images: &[&Image]) -> anyhow::Result<()> {
        let job = self.job_file("accuracy", images, "png")?;
        let zip_path = self.work.join("accuracy.zip");
        self.zipfleet(&job, &zip_path, false)?;
        self.vips(images, "png")?;
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path)?)?;
        let mut per_format: BTreeMap<Format, Vec<f64>> = BTreeMap::new();
        for image in images {
            let mut ours = Vec::new();
            archive
                .by_name(&format!("corpus/{}.png", image.id))?
                .read_to_end(&mut ours)?;
            let ours = image::load_from_memory(&ours)?.to_rgb8();
            let stem = image
                .key
                .rsplit_once('.')
                .map_or(image.key.as_str(), |(stem, _)| stem);
            let theirs =
                image::open(self.work.join("vips-png").join(format!("{stem}.png")))?.to_rgb8();
            if ours.dimensions() != theirs.dimensions() {
                bail!(
                    "{}: zipfleet made {:?}, libvips {:?}",
                    image.key,
                    ours.dimensions(),
                    theirs.dimensions()
                );
            }
            let total: u64 = ours
                .as_raw()
                .iter()
                .zip(theirs.as_raw())
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum();
            per_format
                .entry(image.format)
                .or_default()
                .push(total as f64 / ours.as_raw().len() as f64);
        }
        println!();
        println!("## Accuracy — mean absolute difference per channel against libvips (0–255, PNG output)");
        println!();
        println!("| subset | images | mean | worst image |");
        println!("|---|---|---|---|");
        let mut everything = Vec::new();
        for (format, values) in &per_format {
            everything.extend_from_slice(values);
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let worst = values.iter().copied().fold(0.0, f64::max);
            println!(
                "| {} | {} | {mean:.2} | {worst:.2} |",
                format.name(),
                values.len()
            );
        }
        let mean = everything.iter().sum::<f64>() / everything.len().max(1) as f64;
        let worst = everything.iter().copied().fold(0.0, f64::max);
        println!(
            "| all | {} | **{mean:.2}** | {worst:.2} |",
            everything.len()
        );
        println!();
        println!("Target: mean ≤ 1.0.");
        Ok(())
    }
}
