//! JSON Schemas of the documents zipfleet exchanges, generated from the Rust
//! types themselves (their `utoipa::ToSchema` derives, whose attributes state
//! the validation rules of [`crate::spec`]): the component schemas of the
//! API's OpenAPI document, and the standalone files in `shared/schema/`.
//!
//! The committed files are checked against this by `shared/tests/schema.rs`;
//! regenerate them with
//! `ZIPFLEET_WRITE_SCHEMAS=1 cargo test -p zipfleet-tests --test it schema`.

use crate::message::JobMessage;
use crate::spec::JobSpec;
use crate::status::JobStatus;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

/// Where `$ref`s point in an OpenAPI document.
const COMPONENTS: &str = "#/components/schemas/";

/// The standalone schema files: (file name in `shared/schema/`, root type, title).
pub const FILES: [(&str, &str, &str); 3] = [
    (
        "job-spec.schema.json",
        "JobSpec",
        "zipfleet job spec (body of POST /v1/jobs)",
    ),
    (
        "status.schema.json",
        "JobStatus",
        "zipfleet status document (GET /v1/jobs/{id}, completion message)",
    ),
    (
        "job-message.schema.json",
        "JobMessage",
        "zipfleet job message (jobs queue)",
    ),
];

/// `T` and every schema it refers to, by name.
pub fn collect<T: ToSchema>(into: &mut Vec<(String, RefOr<Schema>)>) {
    T::schemas(into);
    into.push((T::name().into_owned(), T::schema()));
}

/// The schemas of the job spec, the status document and the job message.
pub fn shared_schemas() -> Vec<(String, RefOr<Schema>)> {
    let mut all = Vec::new();
    collect::<JobSpec>(&mut all);
    collect::<JobStatus>(&mut all);
    collect::<JobMessage>(&mut all);
    all
}

/// Rules a derive cannot state, added to the generated component schemas
/// (as JSON): an image has exactly one source (a null source counts as
/// absent, as in [`JobSpec::validate`]); a job message carries a spec or a
/// reference to one (as in [`JobMessage::parse`]).
pub fn add_rules(schemas: &mut BTreeMap<String, Value>) {
    if let Some(image) = schemas.get_mut("ImageSpec") {
        image["oneOf"] = json!([
            {"title": "url source", "required": ["url"], "properties": {"url": {"type": "string"}}},
            {"title": "object source", "required": ["object"], "properties": {"object": {"$ref": format!("{COMPONENTS}ObjectSource")}}}
        ]);
    }
    if let Some(message) = schemas.get_mut("JobMessage") {
        message["anyOf"] = json!([
            {"required": ["spec"], "properties": {"spec": {"$ref": format!("{COMPONENTS}JobSpec")}}},
            {"required": ["spec_ref"], "properties": {"spec_ref": {"$ref": format!("{COMPONENTS}Location")}}}
        ]);
    }
}

/// Component schemas as JSON, with [`add_rules`] applied.
pub fn to_json(schemas: Vec<(String, RefOr<Schema>)>) -> BTreeMap<String, Value> {
    let mut json: BTreeMap<String, Value> = schemas
        .into_iter()
        .map(|(name, schema)| {
            (
                name,
                serde_json::to_value(schema).expect("schemas serialize"),
            )
        })
        .collect();
    add_rules(&mut json);
    json
}

fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix(COMPONENTS) {
                            found.push(name.to_string());
                        }
                    }
                    _ => references(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

fn rewrite_references(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                match (key.as_str(), &mut *inner) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix(COMPONENTS) {
                            *target = format!("#/$defs/{name}");
                        }
                    }
                    _ => rewrite_references(inner),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_references),
        _ => {}
    }
}

/// A standalone JSON Schema (2020-12) for `root`: its schema with every
/// schema it refers to under `$defs`.
pub fn standalone(schemas: &BTreeMap<String, Value>, file: &str, root: &str, title: &str) -> Value {
    let mut defs = BTreeMap::new();
    let mut todo = vec![root.to_string()];
    while let Some(name) = todo.pop() {
        if defs.contains_key(&name) {
            continue;
        }
        let schema = schemas
            .get(&name)
            .unwrap_or_else(|| panic!("schema {name} is not generated"))
            .clone();
        references(&schema, &mut todo);
        defs.insert(name, schema);
    }
    let mut document = defs.remove(root).expect("root schema");
    let Value::Object(map) = &mut document else {
        panic!("{root} is not an object schema")
    };
    map.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    map.insert(
        "$id".into(),
        json!(format!("https://zipfleet.dev/schema/{file}")),
    );
    map.insert("title".into(), json!(title));
    if !defs.is_empty() {
        map.insert("$defs".into(), json!(defs));
    }
    rewrite_references(&mut document);
    document
}

/// Every file of `shared/schema/`, as it must read (pretty JSON, final newline).
pub fn files() -> Vec<(&'static str, String)> {
    let schemas = to_json(shared_schemas());
    FILES
        .iter()
        .map(|(file, root, title)| {
            let text = serde_json::to_string_pretty(&standalone(&schemas, file, root, title))
                .expect("JSON");
            (*file, text + "\n")
        })
        .collect()
}
