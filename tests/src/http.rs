//! A tiny HTTP/1.1 server on 127.0.0.1 for tests, with full control over what
//! goes on the wire (so it can also misbehave on purpose), counts of the
//! connections it accepted and the requests it got (per path too), and the
//! most requests it was serving at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server does for one path.
#[derive(Debug, Clone)]
pub enum Route {
    /// A normal response with a correct Content-Length.
    Body {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// A redirect to `location`.
    Redirect { status: u16, location: String },
    /// Send the head, then the body one byte every `interval`.
    Drip { body: Vec<u8>, interval: Duration },
    /// Claim `claimed` bytes in Content-Length but send `body`, then hang.
    LyingLength { claimed: u64, body: Vec<u8> },
    /// No Content-Length: stream `total` bytes of `fill` and close.
    Unbounded { total: usize },
    /// Wait `delay`, then answer like `Body` with status 200.
    Slow {
        content_type: &'static str,
        body: Vec<u8>,
        delay: Duration,
    },
    /// `status` (429 or 503) with `Retry-After: seconds`.
    RetryAfter { status: u16, seconds: u64 },
    /// The first request gets the first route, the next the second, ...;
    /// the last repeats.
    Sequence(Vec<Route>),
}

#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    load: Arc<Load>,
    task: tokio::task::JoinHandle<()>,
}

/// Requests per path, and how many were being served at once.
#[derive(Debug, Default)]
struct Load {
    per_path: Mutex<HashMap<String, usize>>,
    serving: AtomicUsize,
    most: AtomicUsize,
}

impl TestServer {
    /// Start on `ip:0` (e.g. 127.0.0.1 or 127.0.0.2).
    pub async fn start_on(ip: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind test server");
        let addr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let load = Arc::new(Load::default());
        let (routes_task, connections_task, requests_task, load_task) = (
            routes.clone(),
            connections.clone(),
            requests.clone(),
            load.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                connections_task.fetch_add(1, Ordering::SeqCst);
                let (routes, requests, load) = (
                    routes_task.clone(),
                    requests_task.clone(),
                    load_task.clone(),
                );
                tokio::spawn(async move {
                    let _ = serve(stream, routes, requests, load).await;
                });
            }
        });
        Self {
            addr,
            routes,
            connections,
            requests,
            load,
            task,
        }
    }

    pub async fn start() -> Self {
        Self::start_on("127.0.0.1").await
    }

    pub fn route(&self, path: &str, route: Route) -> String {
        self.routes.lock().unwrap().insert(path.to_string(), route);
        self.url(path)
    }

    pub fn image(&self, path: &str, content_type: &'static str, body: Vec<u8>) -> String {
        self.route(
            path,
            Route::Body {
                status: 200,
                content_type,
                body,
            },
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Requests received so far (several may share a keep-alive connection).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests received for one path so far.
    pub fn requests_for(&self, path: &str) -> usize {
        self.load
            .per_path
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The most requests this server was answering at the same time.
    pub fn most_at_once(&self) -> usize {
        self.load.most.load(Ordering::SeqCst)
    }
}

/// Counts a request as being served until dropped.
struct Serving<'a>(&'a Load);

impl<'a> Serving<'a> {
    fn start(load: &'a Load) -> Self {
        let now = load.serving.fetch_add(1, Ordering::SeqCst) + 1;
        load.most.fetch_max(now, Ordering::SeqCst);
        Self(load)
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0.serving.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    requests: Arc<AtomicUsize>,
    load: Arc<Load>,
) -> std::io::Result<()> {
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let text = String::from_utf8_lossy(&head);
        let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
        let _serving = Serving::start(&load);
        let nth = {
            let mut per_path = load.per_path.lock().unwrap();
            let count = per_path.entry(path.clone()).or_insert(0);
            *count += 1;
            *count - 1
        };
        let mut route = routes.lock().unwrap().get(&path).cloned();
        if let Some(Route::Sequence(steps)) = &route {
            route = steps.get(nth.min(steps.len().saturating_sub(1))).cloned();
        }
        match route {
            Some(Route::Sequence(_)) => {
                write_body(&mut stream, 500, "text/plain", b"nested sequence").await?
            }
            Some(Route::Slow {
                content_type,
                body,
                delay,
            }) => {
                tokio::time::sleep(delay).await;
                write_body(&mut stream, 200, content_type, &body).await?;
            }
            Some(Route::RetryAfter { status, seconds }) => {
                let head = format!("HTTP/1.1 {status} Later\r\nRetry-After: {seconds}\r\nContent-Length: 0\r\n\r\n");
                stream.write_all(head.as_bytes()).await?;
            }
            None => write_body(&mut stream, 404, "text/plain", b"not here").await?,
            Some(Route::Body {
                status,
                content_type,
                body,
            }) => write_body(&mut stream, status, content_type, &body).await?,
            Some(Route::Redirect { status, location }) => {
                let head = format!("HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
                stream.write_all(head.as_bytes()).await?;
            }
            Some(Route::Drip { body, interval }) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                stream.write_all(head.as_bytes()).await?;
                for b in body {
                    stream.write_all(&[b]).await?;
                    tokio::time::sleep(interval).await;
                }
                return Ok(());
            }
            Some(Route::LyingLength { claimed, body }) => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {claimed}\r\n\r\n");
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(&body).await?;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return Ok(());
            }
            Some(Route::Unbounded { total }) => {
                stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n",
                    )
                    .await?;
                let chunk = vec![0xAB; 64 * 1024];
                let mut sent = 0;
                while sent < total {
                    let n = chunk.len().min(total - sent);
                    stream.write_all(&chunk[..n]).await?;
                    sent += n;
                }
                return Ok(());
            }
        }
    }
}

async fn write_body(
    stream: &mut tokio::net::TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} Status\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await
}

/// A loopback URL nothing listens on.
pub async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/gone.jpg")
}
