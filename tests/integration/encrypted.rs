//! DNS over TLS and over HTTPS through the real daemon, against servers on loopback with a CA
//! made for the test: answers read, connections reused, bad certificates refused.

use crate::support;

use std::net::SocketAddr;
use std::path::Path;

use dkim_exporter::metrics::{RECORD_CORRECT, RECORD_PRESENT, RESOLVER_UP};
use support::Daemon;
use support::dns::{Behaviour, Zone};
use support::tls::{TestCa, TlsDns};

const RECORD: [(&str, &str); 2] = [("domain", "example.com"), ("selector", "s1")];
const RECORD_PAIR: (&str, &str) = ("example.com", "s1");

fn zone() -> Behaviour {
    Behaviour::Answer(Zone::new().cname("s1._domainkey.example.com.", "s1.dkim.amazonses.com."))
}

fn resolver(name: &str, protocol: &str, addr: SocketAddr, tls_name: &str, ca: &Path) -> String {
    format!(
        "  - name: {name}\n    address: {addr}\n    protocol: {protocol}\n    tls_name: {tls_name}\n    tls_ca_file: {}\n    max_queries_per_second: 0\n",
        ca.display()
    )
}

fn at(resolver: &str) -> [(&str, &str); 3] {
    [RECORD[0], RECORD[1], ("resolver", resolver)]
}

#[tokio::test]
async fn dot_and_doh_answer_over_one_reused_connection_each() {
    let ca = TestCa::new();
    let dir = support::TempDir::new("tls");
    let ca_file = ca.write(dir.path());
    let dot = TlsDns::start_dot(ca.server_config(&["dns.test"], &[]), zone()).await;
    let doh = TlsDns::start_doh(ca.server_config(&["doh.test"], &[b"h2"]), zone()).await;
    let yaml = format!(
        "interval: 1s\ntimeout: 2s\nauthoritative: false\nresolvers:\n{}{}domains:\n  - domain: example.com\n    provider: ses\n    selectors: [s1]\n",
        resolver("dot", "tls", dot.addr, "dns.test", &ca_file),
        resolver("doh", "https", doh.addr, "doh.test", &ca_file),
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon.wait_rounds(3.0).await;
    for r in ["dot", "doh"] {
        assert_eq!(
            s.value(RECORD_PRESENT.name, &at(r)),
            Some(1.0),
            "{r}\n{}",
            s.text
        );
        assert_eq!(s.value(RECORD_CORRECT.name, &at(r)), Some(1.0), "{r}");
        assert_eq!(
            s.value(RESOLVER_UP.name, &[("resolver", r)]),
            Some(1.0),
            "{r}"
        );
    }
    // Three rounds (and the key lookups) went over one connection to each.
    assert!(dot.queries() >= 3 && doh.queries() >= 3);
    assert_eq!(dot.connections(), 1);
    assert_eq!(doh.connections(), 1);
    daemon.stop().await;
}

#[tokio::test]
async fn bad_certificates_are_lookup_failures_not_missing_records() {
    let ca = TestCa::new();
    let stranger = TestCa::new();
    let dir = support::TempDir::new("tls-bad");
    let ca_file = ca.write(dir.path());
    // A certificate for another name, and one from a CA nobody trusts.
    let wrong_name = TlsDns::start_dot(ca.server_config(&["other.test"], &[]), zone()).await;
    let untrusted =
        TlsDns::start_doh(stranger.server_config(&["doh.test"], &[b"h2"]), zone()).await;
    let yaml = format!(
        "interval: 1s\ntimeout: 2s\nauthoritative: false\nresolvers:\n{}{}domains:\n  - domain: example.com\n    provider: ses\n    selectors: [s1]\n",
        resolver("wrong-name", "tls", wrong_name.addr, "dns.test", &ca_file),
        resolver("untrusted", "https", untrusted.addr, "doh.test", &ca_file),
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon.wait_rounds(2.0).await;
    for r in ["wrong-name", "untrusted"] {
        s.assert_never_answered(RECORD_PAIR, r, "network", 2.0);
    }
    // No DNS message was ever answered over the refused connections.
    assert_eq!(wrong_name.queries() + untrusted.queries(), 0);
    assert!(!s.text.contains("problem=\"missing\""));
    daemon.stop().await;
}
