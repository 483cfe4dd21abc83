//! The bench's loopback web server for the "web" images of the re-train and
//! the bursts, and the log of the requests it answered (the cache targets
//! count them).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Requests the bench's web server answered, per path (query included).
#[derive(Debug, Default)]
pub struct RequestLog {
    total: AtomicUsize,
    per_path: Mutex<HashMap<String, usize>>,
}

impl RequestLog {
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// The most requests any one URL got.
    pub fn most_for_one_url(&self) -> usize {
        self.per_path
            .lock()
            .expect("request log")
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// Forget the per-URL counts (a new burst starts).
    pub fn clear_per_url(&self) {
        self.per_path.lock().expect("request log").clear();
    }

    fn record(&self, path: &str) {
        self.total.fetch_add(1, Ordering::SeqCst);
        *self
            .per_path
            .lock()
            .expect("request log")
            .entry(path.to_string())
            .or_insert(0) += 1;
    }
}

/// Start the bench's web server on loopback; its port.
pub async fn start_file_server(dir: PathBuf, log: Arc<RequestLog>) -> anyhow::Result<u16> {
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = http.local_addr()?.port();
    tokio::spawn(serve_files(http, dir, log));
    Ok(port)
}

/// A query parameter's value (`v=3&hold=1000`).
fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// Trailing bytes that make `?v=N` a different file with the same picture
/// (JPEG, PNG and WebP decoders stop at their end marker).
fn variant_suffix(query: &str) -> Option<Vec<u8>> {
    let n = param(query, "v")?;
    Some(format!("zipfleet-bench-variant-{n}").into_bytes())
}

/// A minimal static file server for the burst's "web" images: GET /NAME
/// answers the file NAME from `dir` (names only, no paths); `?v=N` appends
/// bytes that make it a distinct file of the same picture; `?hold=MS` holds
/// the answer that long (jobs of a known length, for the fairness bench).
async fn serve_files(listener: tokio::net::TcpListener, dir: PathBuf, log: Arc<RequestLog>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let (dir, log) = (dir.clone(), log.clone());
        tokio::spawn(async move {
            loop {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request);
                let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                log.record(&target);
                let (name, query) = target
                    .trim_start_matches('/')
                    .split_once('?')
                    .unwrap_or((target.trim_start_matches('/'), ""));
                let mut body = if name.contains('/') || name.contains("..") {
                    None
                } else {
                    tokio::fs::read(dir.join(name)).await.ok()
                };
                if let (Some(bytes), Some(suffix)) = (&mut body, variant_suffix(query)) {
                    bytes.extend_from_slice(&suffix);
                }
                if let Some(ms) = param(query, "hold").and_then(|ms| ms.parse().ok()) {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                let head = match &body {
                    Some(bytes) => format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", bytes.len()),
                    None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
                };
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                if let Some(bytes) = body {
                    if socket.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}
