//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they (de)serialize — the job spec and status
//! document from `zipfleet-shared` (whose schema rules live on the types) and
//! the API's own bodies. Served at `GET /openapi.json`.

use crate::dead_letters::{DeadLetterList, DeleteResult, RedriveRequest, RedriveResult};
use crate::errors::{ErrorBody, ErrorCode, ErrorDetail};
use crate::fleet::FleetView;
use crate::health::{Health, Readiness};
use crate::jobs::JobAccepted;
use crate::{dead_letters, erasure, fleet, health, jobs};
use serde_json::{json, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use zipfleet_shared::erase::{JobErased, ProjectErased};
use zipfleet_shared::spec::{JobSpec, SpecLimits};
use zipfleet_shared::status::JobStatus;
use zipfleet_shared::status_store::JobPage;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "zipfleet API",
        description = "Image training-data zips for machine-learning classrooms: post a job (labelled images and an output size), \
            poll its status, download the zip. Every `/v1` route needs `Authorization: Bearer <token>`. Errors are \
            `{\"error\": {\"code\", \"message\", \"details\"}}`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        jobs::create_job,
        jobs::search_jobs,
        jobs::get_job,
        jobs::cancel_job,
        erasure::erase_job,
        erasure::erase_project,
        fleet::fleet,
        dead_letters::list,
        dead_letters::redrive,
        dead_letters::redrive_one,
        dead_letters::delete_one,
        health::healthz,
        health::readyz,
        health::metrics,
        health::openapi,
    ),
    components(schemas(JobSpec, JobStatus, JobAccepted, JobPage, JobErased, ProjectErased, FleetView, ErrorBody, ErrorDetail, ErrorCode, DeadLetterList, RedriveRequest, RedriveResult, DeleteResult, Health, Readiness)),
    tags(
        (name = "jobs", description = "Submit, read, find, cancel and erase jobs."),
        (name = "dead letters", description = "Messages that could not be processed, for operators."),
        (name = "operations", description = "The fleet for operators; health, readiness, metrics and this document (no authentication)."),
    )
)]
struct ApiDoc;

/// `[A-Za-z0-9_-]{1,64}`, as [`zipfleet_shared::spec::is_valid_job_id`] checks it.
pub const JOB_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

/// The document for a deployment with these spec limits (the job spec's
/// `maxItems` is the deployment's `ZIPFLEET_MAX_IMAGES`).
pub fn document(limits: &SpecLimits) -> Value {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("ZIPFLEET_API_TOKEN"))
                .build(),
        ),
    );
    let mut value = serde_json::to_value(&doc).expect("the document serializes");
    // The rules a derive cannot state (one source per image), as in shared/schema/.
    if let Some(Value::Object(schemas)) = value.pointer_mut("/components/schemas") {
        let mut map = std::mem::take(schemas).into_iter().collect();
        zipfleet_shared::schema::add_rules(&mut map);
        *schemas = map.into_iter().collect();
    }
    if let Some(images) = value.pointer_mut("/components/schemas/JobSpec/properties/images") {
        images["maxItems"] = json!(limits.max_images);
    }
    if let Some(Value::Object(paths)) = value.get_mut("paths") {
        for operation in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            // utoipa 5.5 writes Link fields in snake_case; OpenAPI spells them in camelCase.
            if let Some(Value::Object(responses)) = operation.get_mut("responses") {
                for link in responses
                    .values_mut()
                    .filter_map(|r| r.get_mut("links"))
                    .filter_map(Value::as_object_mut)
                    .flat_map(|l| l.values_mut())
                {
                    if let Some(link) = link.as_object_mut() {
                        for (snake, camel) in [
                            ("operation_id", "operationId"),
                            ("operation_ref", "operationRef"),
                            ("request_body", "requestBody"),
                        ] {
                            if let Some(field) = link.remove(snake) {
                                link.insert(camel.into(), field);
                            }
                        }
                    }
                }
            }
            // A job id outside the pattern names no job (404).
            if let Some(Value::Array(parameters)) = operation.get_mut("parameters") {
                for parameter in parameters
                    .iter_mut()
                    .filter(|p| p["name"] == "id" && p["in"] == "path")
                {
                    parameter["schema"] = json!({"type": "string", "pattern": JOB_ID_PATTERN});
                }
            }
        }
    }
    // The redrive body is optional (an empty body moves everything).
    if let Some(body) = value.pointer_mut("/paths/~1v1~1dead-letters~1redrive/post/requestBody") {
        body["required"] = json!(false);
    }
    value
}
