//! The UDP transport under load, against a real server on loopback: a few long-lived sockets,
//! replies matched to their queries when IDs are reused, a bound on queries in flight, and a
//! closed port read as a network failure rather than a timeout.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use dkim_exporter::config::{Protocol, ResolverConfig};
use dkim_exporter::evidence::FailureReason;
use dkim_exporter::metrics::Metrics;
use dkim_exporter::resolver::udp::{ROTATE_AFTER, SOCKETS};
use dkim_exporter::resolver::{IN_FLIGHT, ResolverClient, SILENT_AFTER};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use support::dns::{Behaviour, TestDns, Zone};
use tokio::task::JoinSet;

fn client(address: std::net::SocketAddr, timeout: Duration) -> Arc<ResolverClient> {
    let metrics = Metrics::new().unwrap();
    let config = ResolverConfig {
        name: "test".into(),
        address,
        protocol: Protocol::Udp,
        max_queries_per_second: 0,
        tls: None,
    };
    Arc::new(ResolverClient::new(
        &config,
        timeout,
        metrics.resolver("test"),
    ))
}

/// Sends `count` queries for distinct names, `concurrency` at a time, and checks that every
/// reply is definitive and answers its own question.
async fn query_many(client: &Arc<ResolverClient>, count: usize, concurrency: usize) {
    let mut tasks = JoinSet::new();
    for i in 0..count {
        if tasks.len() >= concurrency {
            tasks.join_next().await.unwrap().unwrap();
        }
        let client = client.clone();
        tasks.spawn(async move {
            let name = Name::from_ascii(format!("q{i}.example.com.")).unwrap();
            let reply = client
                .query(&name, RecordType::CNAME)
                .await
                .unwrap_or_else(|f| panic!("query {i}: {:?} {}", f.reason, f.detail));
            assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
            assert_eq!(reply.queries.len(), 1);
            assert_eq!(
                reply.queries[0].name(),
                &name,
                "query {i} got another's reply"
            );
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_share_a_few_sockets_and_each_gets_its_own_reply() {
    let server = TestDns::start(Behaviour::Answer(Zone::new())).await;
    let client = client(server.addr, Duration::from_secs(5));
    // 3,000 queries, 100 at a time: IDs are reused all the time (each socket sees 750 queries
    // from a space of 65,536, with 25 pending at once), and nothing may be crossed or lost.
    query_many(&client, 3000, 100).await;
    assert_eq!(server.udp_queries(), 3000);
    assert!(
        server.udp_ports() <= SOCKETS,
        "{} source ports for {SOCKETS} sockets",
        server.udp_ports()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_move_to_new_ports_after_a_number_of_queries() {
    let server = TestDns::start(Behaviour::Answer(Zone::new())).await;
    let client = client(server.addr, Duration::from_secs(5));
    let count = SOCKETS * ROTATE_AFTER as usize + 100;
    query_many(&client, count, 100).await;
    assert_eq!(server.udp_queries(), count);
    // Every socket was used ROTATE_AFTER times, then replaced (round-robin over the slots).
    assert!(
        server.udp_ports() > SOCKETS,
        "still {} source ports after {count} queries",
        server.udp_ports()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_never_has_more_than_the_bound_in_flight() {
    // Replies come after 50 ms, well within the point where a slow query gives up its place.
    let server = TestDns::start(Behaviour::Late(Duration::from_millis(50), Zone::new())).await;
    let client = client(server.addr, Duration::from_secs(5));
    // Far more callers at once than the bound.
    query_many(&client, 2000, 1000).await;
    assert_eq!(server.udp_queries(), 2000);
    let most = server.max_outstanding();
    assert!(
        most <= IN_FLIGHT,
        "{most} queries outstanding at once, bound {IN_FLIGHT}"
    );
    // The bound was reached, so the test does measure it.
    assert!(most >= IN_FLIGHT / 2, "only {most} outstanding at once");
}

/// Sends `count` queries for distinct names at once; the tasks end with each query's failure.
fn silent_queries(
    client: &Arc<ResolverClient>,
    from: usize,
    count: usize,
) -> JoinSet<FailureReason> {
    let mut tasks = JoinSet::new();
    for i in from..from + count {
        let client = client.clone();
        tasks.spawn(async move {
            let name = Name::from_ascii(format!("q{i}.example.com.")).unwrap();
            client
                .query(&name, RecordType::CNAME)
                .await
                .unwrap_err()
                .reason
        });
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_resolver_does_not_hold_its_places_for_the_whole_timeout() {
    let server = TestDns::start(Behaviour::Silent).await;
    let client = client(server.addr, Duration::from_secs(4));
    // Three times the bound. Were places held until the timeout, only IN_FLIGHT queries could
    // have gone out when the first one times out; giving places up after a short while lets
    // all of them out long before that.
    let mut tasks = silent_queries(&client, 0, 3 * IN_FLIGHT);
    let first = tasks.join_next().await.unwrap().unwrap();
    assert_eq!(first, FailureReason::Timeout);
    assert_eq!(server.udp_queries(), 3 * IN_FLIGHT);
    while let Some(reason) = tasks.join_next().await {
        assert_eq!(reason.unwrap(), FailureReason::Timeout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_silent_for_a_while_no_longer_paces_its_queries_by_places() {
    let server = TestDns::start(Behaviour::Silent).await;
    let client = client(server.addr, Duration::from_millis(500));
    let mut first = silent_queries(&client, 0, SILENT_AFTER as usize);
    while let Some(reason) = first.join_next().await {
        assert_eq!(reason.unwrap(), FailureReason::Timeout);
    }
    assert!(client.silent());
    // Five times the bound. Paced by places, IN_FLIGHT would go out every SLOW_QUERY (250 ms),
    // so no more than three times the bound could have gone out when the first times out
    // (500 ms); a silent resolver's queries go out at once.
    let mut tasks = silent_queries(&client, 1000, 5 * IN_FLIGHT);
    assert_eq!(
        tasks.join_next().await.unwrap().unwrap(),
        FailureReason::Timeout
    );
    assert_eq!(server.udp_queries(), SILENT_AFTER as usize + 5 * IN_FLIGHT);
    while let Some(reason) = tasks.join_next().await {
        assert_eq!(reason.unwrap(), FailureReason::Timeout);
    }
    // The first reply ends the silence, and with it the bound is kept again.
    server.set(Behaviour::Late(Duration::from_millis(50), Zone::new()));
    query_many(&client, 1, 1).await;
    assert!(!client.silent());
    let before = server.max_outstanding();
    query_many(&client, 2000, 1000).await;
    let most = server.max_outstanding();
    assert!(
        most <= IN_FLIGHT && most > before,
        "{most} queries outstanding at once, bound {IN_FLIGHT}"
    );
}

#[tokio::test]
async fn a_closed_port_is_a_network_failure_not_a_timeout() {
    // A port nobody listens on: the kernel answers with ICMP port unreachable.
    let address = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    let client = client(address, Duration::from_secs(30));
    let name = Name::from_ascii("s1._domainkey.example.com.").unwrap();
    let started = tokio::time::Instant::now();
    let failure = client.query(&name, RecordType::CNAME).await.unwrap_err();
    assert_eq!(failure.reason, FailureReason::Network, "{}", failure.detail);
    assert!(started.elapsed() < Duration::from_secs(10));
    // Whether the resolver works is judged over a round, never from one query.
    assert_eq!(client.up(), None);
}
