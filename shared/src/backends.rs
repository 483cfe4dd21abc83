//! The three backends one process works with — broker, object store, status
//! store — as trait objects. `zipfleet_backends::connect` builds them from
//! configuration; everything else only receives them.

use crate::broker::Broker;
use crate::status_store::StatusStore;
use crate::store::ObjectStore;
use std::sync::Arc;

/// The three backends of one process.
#[derive(Clone)]
pub struct Backends {
    pub broker: Arc<dyn Broker>,
    pub store: Arc<dyn ObjectStore>,
    pub status: Arc<dyn StatusStore>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("broker", &self.broker.kind())
            .field("store", &self.store.kind())
            .field("status", &self.status.kind())
            .finish()
    }
}
