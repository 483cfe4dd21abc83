//! `shared/schema/*.json` are generated from the Rust types
//! (`zipfleet_shared::schema`): this test fails when a committed copy differs
//! from what the types generate. After changing a type, regenerate with
//!
//!     ZIPFLEET_WRITE_SCHEMAS=1 cargo test -p zipfleet-tests --test it schema
//!
//! It also holds the generated schemas to the contract: states, codes,
//! defaults and the limits of the validation.

use serde_json::Value;
use zipfleet_shared::spec::{MAX_JOB_ID_LEN, MAX_OUTPUT_SIDE, MAX_SOURCE_LEN, MAX_TEXT_LEN};
use zipfleet_shared::{ImageErrorCode, JobErrorCode, JobState, OutputSpec};

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/schema")
}

fn generated(name: &str) -> Value {
    let (_, text) = zipfleet_shared::schema::files()
        .into_iter()
        .find(|(file, _)| *file == name)
        .expect("generated");
    serde_json::from_str(&text).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn committed_schemas_are_the_generated_ones() {
    let write = std::env::var_os("ZIPFLEET_WRITE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for (file, text) in zipfleet_shared::schema::files() {
        let path = dir().join(file);
        if write {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(file);
        }
    }
    assert!(stale.is_empty(), "{stale:?} differ from the types; regenerate: ZIPFLEET_WRITE_SCHEMAS=1 cargo test -p zipfleet-tests --test it schema");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = zipfleet_shared::schema::FILES
        .iter()
        .map(|(file, _, _)| file.to_string())
        .collect();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "shared/schema/ holds only generated files"
    );
}

#[test]
fn states_and_codes_match_the_contract() {
    let status = generated("status.schema.json");
    let states: Vec<String> = JobState::ALL
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    assert_eq!(strings(&status["$defs"]["JobState"]["enum"]), states);
    let image_codes: Vec<String> = ImageErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(
        strings(&status["$defs"]["ImageErrorCode"]["enum"]),
        image_codes
    );
    let job_codes = strings(&status["$defs"]["JobErrorCode"]["enum"]);
    for code in [
        JobErrorCode::InvalidSpec,
        JobErrorCode::Cancelled,
        JobErrorCode::ZipTooLarge,
        JobErrorCode::StoreFailed,
        JobErrorCode::TooManyAttempts,
        JobErrorCode::Internal,
    ] {
        assert!(
            job_codes.contains(&code.as_str().to_string()),
            "{code} missing from the schema"
        );
    }
    // Every key of the document is always present (null when it does not apply).
    let required = strings(&status["required"]);
    let document =
        serde_json::to_value(zipfleet_shared::JobStatus::queued("j", None, "default", 1)).unwrap();
    let keys: Vec<String> = document.as_object().unwrap().keys().cloned().collect();
    let mut sorted_required = required.clone();
    sorted_required.sort();
    let mut sorted_keys = keys.clone();
    sorted_keys.sort();
    assert_eq!(sorted_required, sorted_keys);
    assert!(strings(&status["$defs"]["JobResult"]["required"]).contains(&"report".to_string()));
    assert!(
        status["$defs"]["DatasetReport"].is_object(),
        "result.report is described"
    );
}

#[test]
fn job_spec_states_the_validation_limits() {
    let spec = generated("job-spec.schema.json");
    assert_eq!(
        spec["additionalProperties"], false,
        "unknown fields are refused"
    );
    assert_eq!(strings(&spec["required"]), vec!["images"]);
    let props = &spec["properties"];
    assert_eq!(
        props["job_id"]["pattern"],
        format!("^[A-Za-z0-9_-]{{1,{MAX_JOB_ID_LEN}}}$")
    );
    assert_eq!(props["project_id"]["maxLength"], MAX_TEXT_LEN);
    assert_eq!(props["images"]["minItems"], 1);
    assert_eq!(
        props["images"]["maxItems"],
        zipfleet_shared::spec::SpecLimits::default().max_images
    );
    // `images: null` is refused by the API, so it is not nullable here.
    assert_eq!(props["images"]["type"], "array");
    let image = &spec["$defs"]["ImageSpec"];
    assert_eq!(image["additionalProperties"], false);
    assert_eq!(
        image["oneOf"].as_array().unwrap().len(),
        2,
        "exactly one source"
    );
    for field in ["id", "label"] {
        assert_eq!(image["properties"][field]["maxLength"], MAX_TEXT_LEN);
    }
    assert_eq!(image["properties"]["url"]["maxLength"], MAX_SOURCE_LEN);
    let output = &spec["$defs"]["OutputSpec"];
    let defaults = serde_json::to_value(OutputSpec::default()).unwrap();
    for field in ["width", "height", "fit", "format", "quality"] {
        assert_eq!(
            output["properties"][field]["default"], defaults[field],
            "output.{field}"
        );
    }
    for field in ["width", "height"] {
        assert_eq!(
            (
                output["properties"][field]["minimum"].as_u64(),
                output["properties"][field]["maximum"].as_u64()
            ),
            (Some(1), Some(u64::from(MAX_OUTPUT_SIDE)))
        );
    }
    assert_eq!(output["properties"]["quality"]["maximum"], 100);
    assert_eq!(
        strings(&spec["$defs"]["Fit"]["enum"]),
        vec!["fill", "cover", "contain"]
    );
    assert_eq!(
        strings(&spec["$defs"]["OutputFormat"]["enum"]),
        vec!["jpeg", "png"]
    );
    assert_eq!(
        strings(&spec["$defs"]["OnImageError"]["enum"]),
        vec!["skip", "fail"]
    );
}
