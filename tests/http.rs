//! The HTTP server under abuse: slow clients, oversized requests, many scrapes at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use support::Daemon;

const YAML: &str = "interval: 1h\nauthoritative: false\nresolvers:\n  - name: x\n    address: 127.0.0.1:9\ndomains: []\n";

#[tokio::test]
async fn slow_clients_cannot_hold_the_server_and_are_cut_off() {
    let daemon = Daemon::start(YAML).await;
    // Fifty clients that send half a request line and stall.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(daemon.addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: sl")
            .await
            .unwrap();
        slow.push(stream);
    }
    // Others are served meanwhile.
    let (status, _) = daemon.get("/metrics").await;
    assert_eq!(status, 200);
    // The stalled ones are closed once the header read timeout (10s) passes.
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(30), slow[0].read(&mut buf))
        .await
        .expect("closed within 30s");
    // Closed (nothing to read, or reset), or told 408, and only after the timeout.
    let said = match read {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(_) => String::new(),
    };
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said}"
    );
    assert!(
        started.elapsed() > Duration::from_secs(5),
        "cut off before the timeout"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let daemon = Daemon::start(YAML).await;
    let mut stream = TcpStream::connect(daemon.addr).await.unwrap();
    let huge = "a".repeat(200 * 1024);
    let request = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n");
    // The server may close before the whole head is written.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(!text.starts_with("HTTP/1.1 200"), "{text}");
    // And the server still serves.
    assert_eq!(daemon.get("/-/healthy").await.0, 200);
    daemon.stop().await;
}

#[tokio::test]
async fn many_scrapes_at_once() {
    let daemon = Daemon::start(YAML).await;
    let scrapes: Vec<_> = (0..200)
        .map(|_| {
            let addr = daemon.addr;
            tokio::spawn(async move { support::http_get(addr, "/metrics").await.0 })
        })
        .collect();
    for scrape in scrapes {
        assert_eq!(scrape.await.unwrap(), 200);
    }
    daemon.stop().await;
}
