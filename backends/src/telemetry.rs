//! Process plumbing the binaries share: structured logs and the shutdown signal.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use zipfleet_shared::config::{LogFormat, LogSettings};

/// Where a binary's log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Services (`zipfleet-api`, `zipfleet-worker`): logs are their output.
    Stdout,
    /// The CLI, whose standard output carries results.
    Stderr,
}

/// The format actually used: the configured one, else `text` on a terminal
/// and `json` (one object a line) everywhere else.
pub fn resolve_format(settings: &LogSettings, on_terminal: bool) -> LogFormat {
    settings.log_format.unwrap_or(if on_terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    })
}

/// Install the global subscriber. `RUST_LOG` filters (default `info`).
/// Colour codes are written only to a terminal, never to a file or pipe.
pub fn init_logging(settings: &LogSettings, stream: LogStream) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let on_terminal = match stream {
        LogStream::Stdout => std::io::stdout().is_terminal(),
        LogStream::Stderr => std::io::stderr().is_terminal(),
    };
    let format = resolve_format(settings, on_terminal);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(on_terminal && format == LogFormat::Text);
    match (stream, format) {
        (LogStream::Stdout, LogFormat::Json) => builder.json().with_writer(std::io::stdout).init(),
        (LogStream::Stdout, LogFormat::Text) => builder.with_writer(std::io::stdout).init(),
        (LogStream::Stderr, LogFormat::Json) => builder.json().with_writer(std::io::stderr).init(),
        (LogStream::Stderr, LogFormat::Text) => builder.with_writer(std::io::stderr).init(),
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_unless_on_a_terminal_or_configured() {
        let unset = LogSettings::default();
        assert_eq!(resolve_format(&unset, false), LogFormat::Json);
        assert_eq!(resolve_format(&unset, true), LogFormat::Text);
        let text = LogSettings {
            log_format: Some(LogFormat::Text),
        };
        assert_eq!(resolve_format(&text, false), LogFormat::Text);
        let json = LogSettings {
            log_format: Some(LogFormat::Json),
        };
        assert_eq!(resolve_format(&json, true), LogFormat::Json);
    }
}
