//! The DNS world the status page is tested on: healthy domains, a domain with every problem,
//! values from DNS that hold HTML, long names, and one resolver that never answers.

use super::dns::{Behaviour, TestDns};
use super::{Daemon, SELECTORS, broken_zone, resolver, rsa_public_key_base64};

/// Healthy domains, three SES records each.
pub const HEALTHY: usize = 12;
/// A domain whose DNS answers hold markup: a CNAME target with a label of HTML, and a key
/// record whose `p=` is HTML.
pub const HOSTILE: &str = "xss.test";
/// The text the hostile answers carry; it must show as text and never run.
pub const INJECTED: &str = "<script>alert(1)</script>";
/// A long domain name with a long selector and a long wrong target: wraps, never scrolls.
pub const LONG: &str =
    "a-rather-long-subdomain-label-for-testing-line-wrapping.example-of-a-long-domain.test";
/// The long domain's selector, 63 characters as DNS allows.
pub const LONG_SELECTOR: &str = "selector-with-a-very-long-name-that-fills-the-whole-label-limit";

/// The running world: the daemon and the servers it asks.
pub struct World {
    pub daemon: Daemon,
    pub servers: Vec<TestDns>,
}

/// Starts the world and waits until the dead resolver is judged down.
pub async fn start() -> World {
    let strong = rsa_public_key_base64(2048);
    let weak = rsa_public_key_base64(1024);
    let mut zone = broken_zone(&strong, &weak);
    let mut entries = Vec::new();
    for i in 1..=HEALTHY {
        let domain = format!("shop{i:02}.test");
        for s in ["s1", "s2", "s3"] {
            let target = format!("{s}-{i}.dkim.amazonses.com.");
            zone = zone
                .cname(&format!("{s}._domainkey.{domain}."), &target)
                .txt(&target, &["v=DKIM1; k=rsa; p=", &strong]);
        }
        entries.push(format!(
            "  - domain: {domain}\n    records:\n      - selector: s1\n        cname: s1-{i}.dkim.amazonses.com\n      - selector: s2\n        cname: s2-{i}.dkim.amazonses.com\n      - selector: s3\n        cname: s3-{i}.dkim.amazonses.com\n"
        ));
    }
    // Half the healthy domains come first in the config: the page still lists the broken first.
    entries.insert(
        HEALTHY / 2,
        format!("  - domain: example.com\n    provider: ses\n    selectors: {SELECTORS}\n"),
    );
    zone = zone
        .cname_raw(
            &format!("h1._domainkey.{HOSTILE}."),
            &[INJECTED.as_bytes(), b"evil", b"test"],
        )
        .cname(
            &format!("h2._domainkey.{HOSTILE}."),
            "h2.dkim.amazonses.com.",
        )
        .txt("h2.dkim.amazonses.com.", &["v=DKIM1; k=rsa; p=", INJECTED]);
    entries.push(format!(
        "  - domain: {HOSTILE}\n    provider: ses\n    selectors: [h1, h2]\n"
    ));
    zone = zone.cname(
        &format!("{LONG_SELECTOR}._domainkey.{LONG}."),
        &format!(
            "{LONG_SELECTOR}.a-long-wrong-target-name-nobody-expects.dkim.example-dns-host.net."
        ),
    );
    entries.push(format!(
        "  - domain: {LONG}\n    provider: ses\n    selectors: [{LONG_SELECTOR}]\n"
    ));
    let r1 = TestDns::start(Behaviour::Answer(zone.clone())).await;
    let r2 = TestDns::start(Behaviour::Answer(zone)).await;
    let dead = TestDns::start(Behaviour::Silent).await;
    let yaml = format!(
        "interval: 2s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}{}{}domains:\n{}",
        resolver("r1", r1.addr),
        resolver("r2", r2.addr),
        resolver("dead", dead.addr),
        entries.concat(),
    );
    let daemon = Daemon::start(&yaml).await;
    daemon
        .wait_for("the dead resolver judged down and two rounds", |s| {
            s.value("dkim_resolver_up", &[("resolver", "dead")]) == Some(0.0)
                && s.value("dkim_check_rounds_total", &[]).unwrap_or(0.0) >= 2.0
        })
        .await;
    World {
        daemon,
        servers: vec![r1, r2, dead],
    }
}
