//! The dataset report end to end: real photos from the corpus (fetched by
//! `tools/corpus/fetch.sh` into `target/corpus`), copies of them made
//! here, through the embedded pipeline and through the fleet on the real
//! services; the report in `manifest.json` must be the status `result.report`.

use image::imageops::FilterType;
use image::ImageFormat;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use zipfleet_shared::config::ReportSettings;
use zipfleet_shared::report::{DatasetReport, WarningCode};
use zipfleet_shared::status::{JobState, JobStatus};
use zipfleet_tests::fleet::spawn_fleet;
use zipfleet_tests::{images, spec, test_settings, zipcheck, Embedded};

const LIMIT: Duration = Duration::from_secs(180);

/// Twenty different photographs and artworks, none a variant of another
/// (the corpus's light/dark and phone-crop variants are left out; see
/// ARCHITECTURE.md, "Dataset report").
const DISTINCT: [&str; 20] = [
    "Autumn-2560x1600.jpg",
    "BytheWater-2560x1600.jpg",
    "ColdRipple-2560x1600.jpg",
    "ColorfulCups-2560x1600.jpg",
    "DarkestHour-2560x1600.jpg",
    "EveningGlow-2560x1600.jpg",
    "FallenLeaf-2560x1600.jpg",
    "Kite-2560x1600.jpg",
    "OneStandsOut-2560x1600.jpg",
    "Path-2560x1600.jpg",
    "summer_1am-2560x1600.jpg",
    "PastelHills-3200x2000.jpg",
    "2004default.jpg",
    "firstgeneration.jpg",
    "the-mouse.jpg",
    "Elarun-2560x1600.png",
    "FlyingKonqui-2560x1600.png",
    "calla.png",
    "wood-l.webp",
    "string.jpg",
];

/// The corpus, fetched once per test binary by the repository's own
/// `tools/corpus/fetch.sh` (idempotent; it checks every file's sha256 against
/// `tools/corpus/images.tsv`). A machine that cannot fetch it fails the test.
fn corpus() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let script = workspace.join("tools/corpus/fetch.sh");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace.join("target"), PathBuf::from);
        let dest = target.join("corpus");
        let status = std::process::Command::new("bash")
            .arg(&script)
            .arg(&dest)
            .status()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            status.success(),
            "{} {} failed: the report tests need the corpus (Debian packages via apt-get)",
            script.display(),
            dest.display()
        );
        dest
    })
}

fn photo(name: &str) -> Vec<u8> {
    let path = corpus().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `name` decoded, scaled by `factor`, encoded as `format`.
fn converted(name: &str, factor: f64, format: ImageFormat) -> Vec<u8> {
    let image = image::load_from_memory(&photo(name)).unwrap();
    let (w, h) = (
        (f64::from(image.width()) * factor) as u32,
        (f64::from(image.height()) * factor) as u32,
    );
    images::encode(&image.resize_exact(w, h, FilterType::Triangle), format)
}

fn flat_grey() -> Vec<u8> {
    images::encode(
        &image::RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128])).into(),
        ImageFormat::Png,
    )
}

/// A real 64×48 picture: a photo shrunk to a thumbnail.
fn thumbnail() -> Vec<u8> {
    let image = image::load_from_memory(&photo("Shell-5120x2880.jpg")).unwrap();
    images::encode(
        &image.resize_exact(64, 48, FilterType::Triangle),
        ImageFormat::Jpeg,
    )
}

/// A class's project with every problem the report knows: (key, bytes) to
/// store and the job's image list.
///
/// - cats (12): nine distinct photos, photo P as its JPEG ("7"), photo Q
///   twice ("q1", "q2");
/// - dogs (3): P as a half-size PNG ("19"), two distinct photos;
/// - birds (2): a 64×48 thumbnail, a flat grey picture.
fn classroom() -> (Vec<(String, Vec<u8>)>, serde_json::Value) {
    let p = "Volna-5120x2880.jpg";
    let q = "IceCold-5120x2880.png";
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut list = Vec::new();
    let mut add = |id: &str, label: &str, key: String, bytes: Vec<u8>| {
        list.push(json!({"id": id, "label": label, "object": {"key": key}}));
        files.push((key, bytes));
    };
    for (i, name) in DISTINCT[..9].iter().enumerate() {
        add(
            &format!("c{i}"),
            "cats",
            format!("uploads/cats/{name}"),
            photo(name),
        );
    }
    add("7", "cats", "uploads/cats/volna.jpg".into(), photo(p));
    let q_bytes = photo(q);
    add(
        "q1",
        "cats",
        "uploads/cats/icecold.png".into(),
        q_bytes.clone(),
    );
    add(
        "q2",
        "cats",
        "uploads/cats/icecold-again.png".into(),
        q_bytes,
    );
    add(
        "19",
        "dogs",
        "uploads/dogs/volna-half.png".into(),
        converted(p, 0.5, ImageFormat::Png),
    );
    for (i, name) in DISTINCT[9..11].iter().enumerate() {
        add(
            &format!("d{i}"),
            "dogs",
            format!("uploads/dogs/{name}"),
            photo(name),
        );
    }
    add(
        "tiny",
        "birds",
        "uploads/birds/tiny.jpg".into(),
        thumbnail(),
    );
    add(
        "grey",
        "birds",
        "uploads/birds/grey.png".into(),
        flat_grey(),
    );
    (files, json!(list))
}

fn codes(report: &DatasetReport) -> Vec<&'static str> {
    report.warnings.iter().map(|w| w.code.as_str()).collect()
}

fn warning(
    report: &DatasetReport,
    code: WarningCode,
) -> Vec<&zipfleet_shared::report::ReportWarning> {
    report.warnings.iter().filter(|w| w.code == code).collect()
}

/// The report of the status document, asserted equal to the manifest's.
fn report_of(status: &JobStatus, manifest: &serde_json::Value) -> DatasetReport {
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    let report = status.result.as_ref().expect("a result").report.clone();
    assert_eq!(
        manifest["report"],
        serde_json::to_value(&report).unwrap(),
        "manifest.json and the status carry the same report"
    );
    report
}

/// Run `images` embedded with `report` thresholds; the status and the manifest.
async fn run_embedded(
    job_id: &str,
    files: &[(String, Vec<u8>)],
    images: serde_json::Value,
    report: ReportSettings,
) -> (JobStatus, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    for (key, bytes) in files {
        let path = dir.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let mut settings = test_settings(dir.path());
    settings.report = report;
    let fleet = Embedded::start(dir.path(), &settings);
    fleet
        .submit(job_id, &spec(json!({"job_id": job_id, "images": images})))
        .await;
    let status = fleet.wait(job_id, LIMIT).await;
    let key = &status
        .result
        .as_ref()
        .unwrap_or_else(|| panic!("{status:?}"))
        .location
        .key;
    let manifest = zipcheck::manifest(&zipcheck::entries(&dir.path().join(key)));
    fleet.stop().await;
    (status, manifest)
}

/// Everything the classroom job must say, whichever fleet ran it.
fn assert_classroom_report(report: &DatasetReport) {
    assert_eq!(
        codes(report),
        [
            "blank_image",
            "duplicate",
            "duplicate_across_labels",
            "imbalanced_labels",
            "small_source",
            "too_few_images",
            "too_few_images"
        ],
        "{report:#?}"
    );
    assert_eq!(
        report
            .labels
            .iter()
            .map(|(l, n)| (l.as_str(), *n))
            .collect::<Vec<_>>(),
        [("birds", 2), ("cats", 12), ("dogs", 3)]
    );

    let across = warning(report, WarningCode::DuplicateAcrossLabels);
    assert_eq!(across[0].ids, ["7", "19"], "the JPEG and its half-size PNG");
    assert_eq!(across[0].labels, ["cats", "dogs"]);
    assert_eq!(
        across[0].message,
        "the same picture is in cats and dogs (images 7 and 19)"
    );
    let within = warning(report, WarningCode::Duplicate);
    assert_eq!(
        (within[0].ids.clone(), within[0].labels.clone()),
        (
            vec!["q1".to_string(), "q2".to_string()],
            vec!["cats".to_string()]
        )
    );
    assert_eq!(warning(report, WarningCode::BlankImage)[0].ids, ["grey"]);
    let small = warning(report, WarningCode::SmallSource);
    assert_eq!(small[0].ids, ["tiny"]);
    assert!(small[0].message.contains("64×48"), "{}", small[0].message);
    let imbalanced = warning(report, WarningCode::ImbalancedLabels);
    assert_eq!(imbalanced[0].labels, ["cats", "birds", "dogs"]);
    let few = warning(report, WarningCode::TooFewImages);
    assert_eq!(few[0].labels, ["birds"]);
    assert_eq!(
        few[0].message,
        "birds has only 2 pictures; add at least 3 more"
    );
    assert_eq!(
        few[1].message,
        "dogs has only 3 pictures; add at least 2 more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_classroom_job_gets_every_warning_in_manifest_and_status() {
    let (files, images) = classroom();
    let (status, manifest) =
        run_embedded("classroom", &files, images, ReportSettings::default()).await;
    let report = report_of(&status, &manifest);
    assert_classroom_report(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_from_configuration_change_the_outcome() {
    let (files, images) = classroom();
    // 12 > 3 × 3 and 2 < 5 by default; with these, neither.
    let (status, manifest) = run_embedded(
        "relaxed",
        &files,
        images,
        ReportSettings {
            min_images_per_label: 2,
            max_label_ratio: 6.0,
        },
    )
    .await;
    let report = report_of(&status, &manifest);
    assert_eq!(
        codes(&report),
        [
            "blank_image",
            "duplicate",
            "duplicate_across_labels",
            "small_source"
        ],
        "{report:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_distinct_photos_are_not_duplicates() {
    let files: Vec<(String, Vec<u8>)> = DISTINCT
        .iter()
        .map(|name| (format!("uploads/{name}"), photo(name)))
        .collect();
    // Two labels, so a false copy would show as either code.
    let images: Vec<serde_json::Value> = DISTINCT
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"id": i.to_string(), "label": if i % 2 == 0 { "a" } else { "b" }, "object": {"key": format!("uploads/{name}")}}))
        .collect();
    let (status, manifest) =
        run_embedded("distinct", &files, json!(images), ReportSettings::default()).await;
    let report = report_of(&status, &manifest);
    assert_eq!(report.labels.values().sum::<u32>(), 20);
    assert!(report.warnings.is_empty(), "{report:#?}");
}

/// The fleet: API + a `zipfleet-worker` process, RabbitMQ, SeaweedFS, Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_reports_the_same_in_manifest_status_and_completion() {
    let fleet = spawn_fleet(1).await;
    let job_id = format!(
        "report-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let (files, images) = classroom();
    let mut list = images.as_array().unwrap().clone();
    for ((key, bytes), image) in files.into_iter().zip(&mut list) {
        let key = format!("{job_id}/{key}");
        fleet.put_object(&key, bytes).await;
        image["object"]["key"] = json!(key);
    }
    let response = fleet
        .post_job(&json!({"job_id": job_id, "images": list}))
        .await;
    assert_eq!(response.status(), 202);
    let status = fleet.wait_final(&job_id, LIMIT).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    let zip = fleet.download(&status.result.as_ref().unwrap().url).await;
    let manifest = zipcheck::manifest(&zipcheck::entries_from_bytes(zip));
    let report = report_of(&status, &manifest);
    assert_classroom_report(&report);

    let completions = fleet
        .drain_queue(fleet.config.completed_queue.as_deref().unwrap())
        .await;
    let completion: JobStatus =
        serde_json::from_slice(completions.last().expect("a completion message")).unwrap();
    assert_eq!(completion.result.unwrap().report, report);
}
