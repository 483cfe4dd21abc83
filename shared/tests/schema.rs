//! The published JSON Schemas stay in step with the Rust types.

use serde_json::Value;
use zipfleet_shared::{ImageErrorCode, JobErrorCode, JobState, OutputSpec};

fn schema(name: &str) -> Value {
    let path = format!("{}/schema/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn error_codes_and_states_match() {
    let status = schema("status.schema.json");
    let image_codes: Vec<String> = ImageErrorCode::ALL.iter().map(|c| c.as_str().to_string()).collect();
    assert_eq!(strings(&status["$defs"]["image_error_code"]["enum"]), image_codes);
    let job_codes = strings(&status["$defs"]["job_error_code"]["enum"]);
    for code in [
        JobErrorCode::InvalidSpec,
        JobErrorCode::Cancelled,
        JobErrorCode::ZipTooLarge,
        JobErrorCode::StoreFailed,
        JobErrorCode::TooManyAttempts,
        JobErrorCode::Internal,
    ] {
        assert!(job_codes.contains(&code.as_str().to_string()), "{code} missing from the schema");
    }
    let states: Vec<String> = JobState::ALL.iter().map(|s| s.as_str().to_string()).collect();
    assert_eq!(strings(&status["properties"]["state"]["enum"]), states);
    let required = strings(&status["required"]);
    let document = serde_json::to_value(zipfleet_shared::JobStatus::queued("j", None, 1)).unwrap();
    let keys: Vec<String> = document.as_object().unwrap().keys().cloned().collect();
    for key in &keys {
        assert!(required.contains(key), "{key} is not in the schema");
    }
    assert_eq!(required.len(), keys.len());
}

#[test]
fn output_defaults_match() {
    let spec = schema("job-spec.schema.json");
    let output = &spec["properties"]["output"]["properties"];
    let defaults = serde_json::to_value(OutputSpec::default()).unwrap();
    for field in ["width", "height", "fit", "format", "quality"] {
        assert_eq!(output[field]["default"], defaults[field], "output.{field}");
    }
}

#[test]
fn every_schema_is_json() {
    schema("job-message.schema.json");
}
