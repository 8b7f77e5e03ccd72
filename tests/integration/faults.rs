//! Every fault a resolver can throw at the daemon, each on its own resolver: none panics, none
//! sticks a task, none reads as a missing record, and each has its reason.

use crate::support;

use std::time::Duration;

use dkim_exporter::metrics::{RECORD_INFO, RECORD_LOOKUP_SUCCESS, RECORD_PRESENT};
use hickory_proto::op::ResponseCode;
use support::dns::{Behaviour, TestDns, Zone};
use support::{Daemon, resolver, tcp_resolver};

const COM: &str = "example.com";

#[tokio::test]
async fn every_fault_maps_to_a_reason_and_never_to_missing() {
    let zone = Zone::new().cname("s1._domainkey.example.com.", "s1.dkim.amazonses.com.");
    let failing: Vec<(&str, Behaviour, &str)> = vec![
        ("silent", Behaviour::Silent, "timeout"),
        (
            "late",
            Behaviour::Late(Duration::from_millis(1500), zone.clone()),
            "timeout",
        ),
        (
            "servfail",
            Behaviour::Rcode(ResponseCode::ServFail),
            "servfail",
        ),
        (
            "refused",
            Behaviour::Rcode(ResponseCode::Refused),
            "refused",
        ),
        ("formerr", Behaviour::Rcode(ResponseCode::FormErr), "other"),
        ("wrong-id", Behaviour::WrongId(zone.clone()), "timeout"),
        ("other-question", Behaviour::OtherQuestion, "timeout"),
        ("garbage", Behaviour::Garbage, "malformed"),
        (
            "truncated-tcp-closed",
            Behaviour::TruncateThenCloseTcp,
            "network",
        ),
    ];
    let answering: Vec<(&str, Behaviour)> = vec![
        ("good", Behaviour::Answer(zone.clone())),
        (
            "long-chain",
            Behaviour::Chain {
                length: 200,
                looped: false,
            },
        ),
        (
            "cname-loop",
            Behaviour::Chain {
                length: 3,
                looped: true,
            },
        ),
    ];
    let mut servers = Vec::new();
    let mut resolvers = String::new();
    for (name, behaviour) in &answering {
        let server = TestDns::start(behaviour.clone()).await;
        resolvers.push_str(&resolver(name, server.addr));
        servers.push(server);
    }
    // Thousands of records only fit over TCP.
    let many = TestDns::start(Behaviour::Many(3000)).await;
    resolvers.push_str(&tcp_resolver("thousands", many.addr));
    for (name, behaviour, _) in &failing {
        let server = TestDns::start(behaviour.clone()).await;
        resolvers.push_str(&resolver(name, server.addr));
        servers.push(server);
    }
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{resolvers}domains:\n  - domain: example.com\n    provider: ses\n    selectors: [s1]\n"
    );
    let daemon = Daemon::start(&yaml).await;
    // Two rounds: every fault hit twice, and the daemon still going.
    let s = daemon.wait_rounds(2.0).await;
    let at = |r| [("domain", COM), ("selector", "s1"), ("resolver", r)];

    for (name, _, reason) in &failing {
        s.assert_never_answered((COM, "s1"), name, reason, 2.0);
    }
    // Answers that are odd but definitive are read, within bounds.
    assert_eq!(s.value(RECORD_PRESENT.name, &at("good")), Some(1.0));
    for name in ["long-chain", "cname-loop"] {
        assert_eq!(
            s.value(RECORD_LOOKUP_SUCCESS.name, &at(name)),
            Some(1.0),
            "{name}"
        );
        assert_eq!(s.value(RECORD_PRESENT.name, &at(name)), Some(1.0), "{name}");
    }
    assert_eq!(
        s.value(RECORD_LOOKUP_SUCCESS.name, &at("thousands")),
        Some(1.0)
    );
    assert_eq!(s.value(RECORD_PRESENT.name, &at("thousands")), Some(0.0));
    // The good resolver has the record: the others' failures do not make it missing.
    assert!(!s.text.contains(r#"problem="missing""#), "{}", s.text);
    daemon.stop().await;
}

#[tokio::test]
async fn thousands_of_addresses_make_a_bounded_label() {
    let many = TestDns::start(Behaviour::Many(3000)).await;
    let yaml = format!(
        "interval: 1s\ntimeout: 2s\nauthoritative: false\nresolvers:\n{}domains:\n  - domain: example.com\n    provider: ses\n    selectors: [s1]\n",
        tcp_resolver("thousands", many.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon.wait_rounds(1.0).await;
    let info = s.find(
        RECORD_INFO.name,
        &[
            ("domain", COM),
            ("selector", "s1"),
            ("resolver", "thousands"),
        ],
    );
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].labels["record_type"], "a");
    assert_eq!(info[0].labels["value"].split(',').count(), 16);
    // The server answers every name, the expected target included, with the same addresses:
    // what a DNS host that flattens the CNAME does.
    assert!(
        s.text.contains(r#"problem="cname_flattened""#),
        "{}",
        s.text
    );
    daemon.stop().await;
}
