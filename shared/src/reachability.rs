//! Whether a process's three backends answer, each within a few seconds:
//! the one check behind the API's and every worker's `/readyz`.

use crate::broker::Broker;
use crate::status_store::StatusStore;
use crate::store::ObjectStore;
use std::time::Duration;

/// How long each backend has to answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Each backend's verdict, named `broker`, `store` and `status`.
pub type Checks = [(&'static str, Result<(), String>); 3];

/// Ask the broker, the object store and the status store at once.
pub async fn check_backends(
    broker: &dyn Broker,
    store: &dyn ObjectStore,
    status: &dyn StatusStore,
) -> Checks {
    let timed = |result: Result<Result<(), String>, tokio::time::error::Elapsed>| {
        result.unwrap_or_else(|_| Err("timed out".into()))
    };
    let (broker, store, status) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, async {
            broker.check().await.map_err(|e| e.to_string())
        }),
        tokio::time::timeout(CHECK_TIMEOUT, async {
            store.check().await.map_err(|e| e.to_string())
        }),
        tokio::time::timeout(CHECK_TIMEOUT, async {
            status.check().await.map_err(|e| e.to_string())
        }),
    );
    [
        ("broker", timed(broker)),
        ("store", timed(store)),
        ("status", timed(status)),
    ]
}

/// Every backend answered.
pub fn all_ok(checks: &[(&'static str, Result<(), String>)]) -> bool {
    checks.iter().all(|(_, verdict)| verdict.is_ok())
}
