//! The HTTP server under abuse: slow clients, oversized requests, many scrapes at once, and
//! scrapes too large to render in one piece.

use crate::support;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use dkim_exporter::metrics::{
    DOMAIN_HEALTHY, EXPORTER_BUILD_INFO, EXPORTER_RECORDS, RECORD_LOOKUP_SUCCESS, RECORD_PRESENT,
    RECORD_PROBLEM, RESOLVER_UP,
};
use support::Daemon;
use support::dns::{Behaviour, TestDns, Zone};

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

/// Sends `request` on a new connection and reads the answer until the server closes.
async fn exchange_raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer before the whole request is written.
    let _ = stream.write_all(request).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn oversized_request_heads_are_refused_with_a_reason() {
    let daemon = Daemon::start(YAML).await;
    // Headers past 64 KiB: 431, saying so.
    let huge = "a".repeat(200 * 1024);
    let text = exchange_raw(
        daemon.addr,
        format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(
        text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\nthe request head is larger than 65536 bytes\n"),
        "{text}"
    );
    // A URL of 70 KB (the issue's) and one of 20 KB: 414, saying so.
    for selectors in [1000, 300] {
        let url = format!(
            "/probe?target=example.com{}",
            "&selector=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz01234567"
                .repeat(selectors)
        );
        let text = exchange_raw(
            daemon.addr,
            format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        assert!(
            text.contains("content-type: text/plain; charset=utf-8\r\n")
                && text.contains("the request line is longer than 16384 bytes"),
            "{text}"
        );
    }
    // Within the limits, the request reaches its handler.
    let url = format!("/probe?target=example.com{}", "&selector=s".repeat(65));
    let (status, body) = daemon.get(&url).await;
    assert_eq!(status, 400);
    assert!(body.contains("at most 64 selectors"), "{body}");
    // And the server still serves.
    assert_eq!(daemon.get("/-/healthy").await.0, 200);
    daemon.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_serves_every_request() {
    let daemon = Daemon::start(YAML).await;
    // Two requests in one write, then a third: the first head is read ahead of hyper and
    // handed to it with what followed.
    let mut stream = TcpStream::connect(daemon.addr).await.unwrap();
    stream
        .write_all(
            b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\nGET /-/ready HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream
        .write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    let statuses: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 404 Not Found"
        ],
        "{text}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn many_scrapes_at_once() {
    let daemon = Daemon::start(YAML).await;
    let scrapes: Vec<_> = (0..200)
        .map(|_| {
            let addr = daemon.addr;
            tokio::spawn(async move { support::http_get(addr, "/metrics").await })
        })
        .collect();
    // Every body is a whole scrape: it parses, it ends with the registry's families, and it
    // has the same series as every other (only values change between scrapes).
    let mut first: Option<Vec<String>> = None;
    for scrape in scrapes {
        let (status, body) = scrape.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.ends_with('\n'), "{body}");
        assert!(body.contains("dkim_exporter_build_info{"), "{body}");
        let parsed = support::Scrape::parse(&body);
        let series: Vec<String> = parsed
            .samples
            .iter()
            .map(|s| format!("{}{:?}", s.name, s.labels))
            .collect();
        match &first {
            None => first = Some(series),
            Some(first) => assert_eq!(&series, first, "{body}"),
        }
    }
    daemon.stop().await;
}

#[tokio::test]
async fn a_large_scrape_arrives_whole_in_chunks() {
    // Nothing in the zone: every record is missing on every resolver, which gives five series
    // per record and resolver and a problem per record.
    // One server per resolver: a single one drops queries at this rate.
    // The domains exist, with no DKIM record.
    let zone = (0..250).fold(Zone::new(), |zone, i| {
        zone.a(&format!("d{i:03}.example."), [192, 0, 2, 1])
    });
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(TestDns::start(Behaviour::Answer(zone.clone())).await);
    }
    let resolvers: String = servers
        .iter()
        .enumerate()
        .map(|(k, dns)| support::resolver(&format!("r{}", k + 1), dns.addr))
        .collect();
    let domains: String = (0..250)
        .map(|i| {
            format!(
                "  - domain: d{i:03}.example\n    provider: ses\n    selectors: [s1, s2, s3, s4]\n"
            )
        })
        .collect();
    let yaml = format!(
        "interval: 2s\ntimeout: 5s\nauthoritative: false\nresolvers:\n{resolvers}domains:\n{domains}"
    );
    let daemon = Daemon::start(&yaml).await;
    // Scrapes during the first round stream while the round writes; each must come whole.
    daemon.wait_rounds(1.0).await;

    let response = support::http_exchange(daemon.addr, "GET", "/metrics", &[]).await;
    assert_eq!(response.status, 200);
    assert!(response.chunked(), "{}", response.head);
    assert!(
        response
            .head
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        response.head
    );
    let chunks = support::dechunk(&response.body).expect("a complete body");
    let body = String::from_utf8(chunks.concat()).unwrap();
    assert!(body.len() > 1_500_000, "{}", body.len());
    assert!(chunks.len() >= 6, "{} chunks", chunks.len());
    assert!(
        chunks.iter().all(|c| c.ends_with(b"\n")),
        "chunks end at line ends"
    );

    // Rounds go on writing between chunks, so only what holds at any moment after the first
    // round is checked: every record was looked up on every resolver, and answered on most.
    let scrape = support::Scrape::parse(&body);
    let success = scrape.find(RECORD_LOOKUP_SUCCESS.name, &[]);
    assert_eq!(success.len(), 1000 * 4);
    assert!(success.iter().all(|s| s.value == 0.0 || s.value == 1.0));
    let present = scrape.find(RECORD_PRESENT.name, &[]);
    assert_within(present.len(), 3000, 4000);
    assert!(present.iter().all(|s| s.value == 0.0));
    let missing = scrape.find(RECORD_PROBLEM.name, &[("problem", "missing")]);
    assert_within(missing.len(), 500, 1000);
    let healthy = scrape.find(DOMAIN_HEALTHY.name, &[]);
    assert_within(healthy.len(), 200, 250);
    assert!(healthy.iter().all(|s| s.value == 0.0));
    assert_eq!(scrape.value(EXPORTER_RECORDS.name, &[]), Some(1000.0));
    // The last chunk holds the resolvers and the registry.
    assert_eq!(scrape.find(RESOLVER_UP.name, &[]).len(), 4);
    assert_eq!(scrape.find(EXPORTER_BUILD_INFO.name, &[]).len(), 1);
    let last = String::from_utf8(chunks.last().unwrap().clone()).unwrap();
    assert!(last.contains(RESOLVER_UP.name), "{last}");
    // Every family once, its samples together.
    let mut families = std::collections::HashSet::new();
    for line in body.lines().filter(|l| l.starts_with("# TYPE ")) {
        assert!(families.insert(line), "{line} twice");
    }
    daemon.stop().await;
}

#[tokio::test]
async fn head_gets_the_headers_of_a_scrape_and_no_body() {
    let daemon = Daemon::start(YAML).await;
    let response = support::http_exchange(daemon.addr, "HEAD", "/metrics", &[]).await;
    assert_eq!(response.status, 200, "{}", response.head);
    assert!(
        response
            .head
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        response.head
    );
    assert!(response.body.is_empty(), "{:?}", response.body);
    daemon.stop().await;
}

/// `n` is more than `above` and at most `most`.
fn assert_within(n: usize, above: usize, most: usize) {
    assert!(n > above && n <= most, "{n} not in ({above}, {most}]");
}
