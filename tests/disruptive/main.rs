//! The tests that stop or restart services every other test uses (RabbitMQ
//! restarted, Redis flushed, S3 frozen) or that need the machine to
//! themselves (the autoscaling run, whose timing a busy machine would
//! distort). One binary, and one test at a time: each takes [`alone`] first.

mod autoscaling;
mod broker_restart;
mod chaos;
mod outages;

/// Held for the whole of each test in this binary, so they run one at a
/// time whatever `--test-threads` says.
pub(crate) async fn alone() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ONE_AT_A_TIME.lock().await
}
