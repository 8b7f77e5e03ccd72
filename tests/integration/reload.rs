//! Reloads through the real daemon: add a domain, remove one and a resolver, break the file,
//! fix it; the metrics after each step.

use crate::support;

use std::net::SocketAddr;
use std::path::PathBuf;

use dkim_exporter::metrics::{
    CONFIG_LAST_RELOAD_SUCCESSFUL, DNS_QUERIES_TOTAL, EXPORTER_RECORDS, LOOKUP_ERRORS_TOTAL,
    RECORD_PRESENT, RESOLVER_UP,
};
use support::dns::{Behaviour, TestDns, Zone};
use support::{Daemon, http_request};

fn config(resolvers: &[(&str, SocketAddr)], domains: &[&str]) -> String {
    let mut yaml = String::from("interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n");
    for (name, addr) in resolvers {
        yaml.push_str(&support::resolver(name, *addr));
    }
    yaml.push_str("domains:\n");
    for domain in domains {
        yaml.push_str(&format!(
            "  - domain: {domain}\n    provider: ses\n    selectors: [s1]\n"
        ));
    }
    yaml
}

/// A config file in a scratch directory, removed with it.
struct TempConfig {
    path: PathBuf,
    _dir: support::TempDir,
}

impl TempConfig {
    fn new(name: &str, text: &str) -> TempConfig {
        let dir = support::TempDir::new(&format!("reload-{name}"));
        TempConfig {
            path: dir.write("config.yaml", text),
            _dir: dir,
        }
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }
}

#[tokio::test]
async fn reload_adds_removes_refuses_and_recovers() {
    let zone = Zone::new()
        .cname("s1._domainkey.a.example.", "s1.dkim.amazonses.com.")
        .cname("s1._domainkey.b.example.", "s1.dkim.amazonses.com.");
    let one = TestDns::start(Behaviour::Answer(zone.clone())).await;
    let two = TestDns::start(Behaviour::Answer(zone)).await;
    let file = TempConfig::new(
        "steps",
        &config(&[("one", one.addr), ("two", two.addr)], &["a.example"]),
    );
    let text = std::fs::read_to_string(&file.path).unwrap();
    let options = dkim_exporter::Options {
        config_file: Some(file.path.clone()),
        ..Default::default()
    };
    let daemon = Daemon::start_with(&text, options).await;
    let s = daemon.wait_rounds(1.0).await;
    let rec = |d, r| [("domain", d), ("selector", "s1"), ("resolver", r)];
    assert_eq!(
        s.value(RECORD_PRESENT.name, &rec("a.example", "two")),
        Some(1.0)
    );
    assert_eq!(s.value(CONFIG_LAST_RELOAD_SUCCESSFUL.name, &[]), Some(1.0));

    // Add domain b, remove resolver two.
    file.write(&config(&[("one", one.addr)], &["a.example", "b.example"]));
    let (status, body) = http_request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(status, 200, "{body}");
    // At once: resolver two is gone everywhere, a keeps what it knew, b is not yet checked.
    let s = daemon.scrape().await;
    assert!(!s.text.contains("resolver=\"two\""), "{}", s.text);
    assert_eq!(
        s.value(RECORD_PRESENT.name, &rec("a.example", "one")),
        Some(1.0)
    );
    assert_eq!(s.value(EXPORTER_RECORDS.name, &[]), Some(2.0));
    let rounds = s.value("dkim_check_rounds_total", &[]).unwrap();
    let s = daemon.wait_rounds(rounds + 2.0).await;
    assert_eq!(
        s.value(RECORD_PRESENT.name, &rec("b.example", "one")),
        Some(1.0)
    );
    assert!(
        s.find(DNS_QUERIES_TOTAL.name, &[("resolver", "two")])
            .is_empty()
    );
    assert!(
        s.find(LOOKUP_ERRORS_TOTAL.name, &[("resolver", "two")])
            .is_empty()
    );
    assert!(s.find(RESOLVER_UP.name, &[("resolver", "two")]).is_empty());

    // Break the file: refused with the place, the config in force stays.
    file.write(
        "interval: 1s\ndomains:\n  - domain: a.example\n    provider: nope\n    selectors: [s1]\n",
    );
    let (status, body) = http_request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(status, 500);
    assert!(
        body.contains(&format!(
            "{}:4:15: domains[0].provider: unknown provider",
            file.path.display()
        )),
        "{body}"
    );
    let s = daemon.scrape().await;
    assert_eq!(s.value(CONFIG_LAST_RELOAD_SUCCESSFUL.name, &[]), Some(0.0));
    assert_eq!(s.value(EXPORTER_RECORDS.name, &[]), Some(2.0));
    let rounds = s.value("dkim_check_rounds_total", &[]).unwrap();
    let s = daemon.wait_rounds(rounds + 1.0).await;
    assert_eq!(
        s.value(RECORD_PRESENT.name, &rec("b.example", "one")),
        Some(1.0)
    );

    // Fix it, without domain a: a vanishes at once.
    file.write(&config(&[("one", one.addr)], &["b.example"]));
    let (status, _) = http_request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(status, 200);
    let s = daemon.scrape().await;
    assert_eq!(s.value(CONFIG_LAST_RELOAD_SUCCESSFUL.name, &[]), Some(1.0));
    assert!(!s.text.contains("a.example"), "{}", s.text);
    assert_eq!(
        s.value(RECORD_PRESENT.name, &rec("b.example", "one")),
        Some(1.0)
    );

    // Other methods are refused.
    assert_eq!(http_request(daemon.addr, "GET", "/-/reload").await.0, 405);
    daemon.stop().await;
}
