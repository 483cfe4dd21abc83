//! The API on in-process backends (memory broker and status, a directory
//! store): the OpenAPI document it serves, and the dead-letter routes.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use zipfleet_api::startup::{ApiSettings, Application};
use zipfleet_backends::Backends;
use zipfleet_shared::accept::AcceptSettings;
use zipfleet_shared::broker::memory::MemoryBroker;
use zipfleet_shared::broker::{Broker, Lane};
use zipfleet_shared::spec::SpecLimits;
use zipfleet_shared::status_store::memory::MemoryStatusStore;
use zipfleet_shared::status_store::FairLimits;
use zipfleet_shared::store::file::FileStore;

const TOKEN: &str = "t0ken";

struct Api {
    url: String,
    broker: MemoryBroker,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(max_images: usize) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let broker = MemoryBroker::new(1);
    let backends = Backends {
        broker: Arc::new(broker.clone()),
        store: Arc::new(FileStore::new(dir.path()).unwrap()),
        status: Arc::new(MemoryStatusStore::new()),
    };
    let settings = ApiSettings {
        token: Some(TOKEN.into()),
        max_body_bytes: 64 * 1024,
        spec_limits: SpecLimits { max_images },
        accept: AcceptSettings {
            claim_check_bytes: 200 * 1024,
            limits: FairLimits {
                lanes: 1,
                max_queued_per_tenant: 1000,
            },
        },
        tombstone_ttl: Duration::from_secs(60),
        download_url_expiry: Duration::from_secs(60),
    };
    let app = Application::build("127.0.0.1:0", backends, settings)
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    Api {
        url,
        broker,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Api {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_document_describes_every_route_with_links_and_security() {
    let api = start(77).await;
    let response = api
        .client
        .get(format!("{}/openapi.json", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the document needs no token");
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut routes: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    routes.sort();
    assert_eq!(
        routes,
        [
            "DELETE /v1/dead-letters/{id}",
            "DELETE /v1/jobs/{id}",
            "DELETE /v1/projects/{project_id}",
            "GET /healthz",
            "GET /metrics",
            "GET /openapi.json",
            "GET /readyz",
            "GET /v1/dead-letters",
            "GET /v1/fleet",
            "GET /v1/jobs",
            "GET /v1/jobs/{id}",
            "POST /v1/dead-letters/redrive",
            "POST /v1/dead-letters/{id}/redrive",
            "POST /v1/jobs",
            "POST /v1/jobs/{id}/cancel"
        ]
    );
    // Every /v1 route needs the bearer token; the others none.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for operation in item.as_object().unwrap().values() {
            let secured = operation["security"] == json!([{"bearer": []}]);
            assert_eq!(secured, path.starts_with("/v1"), "{path}");
            if secured {
                assert!(
                    operation["responses"]["401"].is_object(),
                    "{path} documents 401"
                );
            }
        }
    }
    let links = &doc["paths"]["/v1/jobs"]["post"]["responses"]["202"]["links"];
    for (link, operation) in [
        ("GetJob", "getJob"),
        ("CancelJob", "cancelJob"),
        ("EraseJob", "eraseJob"),
    ] {
        assert_eq!(links[link]["operationId"], operation);
        assert_eq!(links[link]["parameters"]["id"], "$response.body#/job_id");
    }
    assert_eq!(
        doc["paths"]["/v1/jobs/{id}"]["get"]["operationId"],
        "getJob"
    );
    assert_eq!(
        doc["paths"]["/v1/jobs/{id}"]["delete"]["operationId"],
        "eraseJob"
    );
    assert_eq!(
        doc["paths"]["/v1/jobs/{id}/cancel"]["post"]["operationId"],
        "cancelJob"
    );
    assert!(
        doc["paths"]["/v1/jobs"]["post"]["responses"]["429"]["headers"]["Retry-After"].is_object(),
        "the quota's 429 documents Retry-After"
    );
    // The deployment's image limit, and the spec's rules from the shared types.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["JobSpec"]["properties"]["images"]["maxItems"], 77);
    assert_eq!(schemas["ImageSpec"]["oneOf"].as_array().unwrap().len(), 2);
    let codes: Vec<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in [
        "invalid_spec",
        "unauthorized",
        "not_found",
        "conflict",
        "erased",
        "tenant_quota",
        "payload_too_large",
        "unavailable",
    ] {
        assert!(codes.contains(&code), "{code} missing");
    }
    assert_eq!(
        doc["paths"]["/v1/dead-letters/redrive"]["post"]["requestBody"]["required"],
        false
    );
}

#[tokio::test]
async fn errors_have_the_contract_shape() {
    let api = start(10).await;
    let response = api
        .client
        .get(format!("{}/v1/jobs/nope", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "unauthorized", "message": "missing or wrong bearer token", "details": []}})
    );
    let response = api.get("/v1/jobs/nope").await;
    assert_eq!(response.status(), 404);
    let response = api.get("/no/such/route").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn dead_letters_are_listed_and_redriven() {
    let api = start(10).await;
    api.broker
        .publish_job(Lane(0), "j1", br#"{"job_id":"j1","spec":{"images":[]}}"#)
        .await
        .unwrap();
    api.broker
        .take(Lane(0), Duration::ZERO)
        .await
        .unwrap()
        .expect("the message")
        .dead_letter("not a job message: test")
        .await
        .unwrap();

    let listing: Value = api.get("/v1/dead-letters").await.json().await.unwrap();
    assert_eq!(listing["depth"], 1);
    assert_eq!(listing["messages"][0]["reason"], "not a job message: test");
    assert_eq!(listing["messages"][0]["job_id"], "j1");
    let metrics = api
        .client
        .get(format!("{}/metrics", api.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\nzipfleet_dead_letter_depth 1\n"),
        "{metrics}"
    );

    let redrive = |body: Option<&'static str>| {
        let request = api
            .client
            .post(format!("{}/v1/dead-letters/redrive", api.url))
            .bearer_auth(TOKEN);
        match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(body),
            None => request,
        }
        .send()
    };
    for bad in [
        r#"{"max": 0}"#,
        r#"{"max": 10001}"#,
        r#"{"max": "x"}"#,
        r#"{"other": 1}"#,
        "[",
        "null",
    ] {
        let response = redrive(Some(bad)).await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_request", "{bad}");
    }
    let moved: Value = redrive(None).await.unwrap().json().await.unwrap();
    assert_eq!(moved, json!({"moved": 1}));
    let again = api
        .broker
        .take(Lane(0), Duration::ZERO)
        .await
        .unwrap()
        .expect("redriven to lane 0");
    assert_eq!(again.attempt, 1);
    let moved: Value = redrive(Some(r#"{"max": null}"#))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(moved, json!({"moved": 0}));
}

#[tokio::test]
async fn whole_numbers_with_a_fraction_are_integers() {
    // JSON Schema's `integer` (the document) takes 128.0; so does the API.
    let api = start(10).await;
    let spec = r#"{"images": [{"id": "1", "label": "a", "url": "https://example.org/a.jpg"}], "output": {"width": 128.0, "height": 96, "quality": 80.0}}"#;
    let response = api
        .client
        .post(format!("{}/v1/jobs", api.url))
        .bearer_auth(TOKEN)
        .body(spec)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let refused = r#"{"images": [{"id": "1", "label": "a", "url": "https://example.org/a.jpg"}], "output": {"width": 128.5}}"#;
    let response = api
        .client
        .post(format!("{}/v1/jobs", api.url))
        .bearer_auth(TOKEN)
        .body(refused)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["field"], "output.width");
}
