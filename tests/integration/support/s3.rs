//! A loopback S3 `GetObject` for what moto always does right: bodies sent without a
//! `Content-Length` (chunked), as long as the client keeps reading, and a large body that says
//! its length, with a count of the bytes handed to the connection. Any path `/BUCKET/KEY` is
//! answered by its key:
//!
//! - `small`: 500 bytes of `x`, chunked;
//! - `endless`: [`LONG`] bytes, chunked: no length to refuse it by;
//! - `declared`: [`LONG`] bytes with their `Content-Length`.
//!
//! A `Content-Length` shorter than the body cannot reach the reader: hyper reads that many
//! bytes and no more.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The length of the long bodies: far more than any test's bound and than loopback's socket
/// buffers, so a reader that stops early leaves most of it unsent.
pub const LONG: u64 = 64 << 20;

/// The fake, stopped when dropped.
pub struct FakeS3 {
    /// Where it listens.
    pub addr: SocketAddr,
    sent: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl FakeS3 {
    /// Starts the fake on a loopback port.
    pub async fn start() -> FakeS3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let counted = sent.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let sent = counted.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let sent = sent.clone();
                        async move { Ok::<_, Infallible>(answer(request.uri().path(), sent)) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeS3 { addr, sent, task }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Body bytes handed to connections so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(path: &str, sent: Arc<AtomicU64>) -> Response<Counted> {
    let key = path.rsplit('/').next().unwrap_or("");
    let (length, declared) = match key {
        "small" => (500, false),
        "endless" => (LONG, false),
        "declared" => (LONG, true),
        _ => {
            let mut response = Response::new(Counted::new(0, false, sent));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        }
    };
    let mut response = Response::new(Counted::new(length, declared, sent));
    let headers = response.headers_mut();
    headers.insert("etag", "\"0123456789abcdef\"".parse().unwrap());
    headers.insert("content-type", "message/rfc822".parse().unwrap());
    response
}

/// A body of `x`, 16 KiB a frame, counting what it hands out.
struct Counted {
    remaining: u64,
    /// Whether its length is told (`Content-Length`) or not (chunked).
    declared: bool,
    sent: Arc<AtomicU64>,
}

impl Counted {
    fn new(length: u64, declared: bool, sent: Arc<AtomicU64>) -> Counted {
        Counted {
            remaining: length,
            declared,
            sent,
        }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = this.remaining.min(16 << 10);
        this.remaining -= n;
        this.sent.fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; n as usize])))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        if self.declared {
            SizeHint::with_exact(self.remaining)
        } else {
            SizeHint::default()
        }
    }
}
