//! The status pages over HTTP: broken domains first, filtering, paging, a page per domain,
//! escaping. `tests/integration/browser.rs` looks at the same pages in a real browser.

use crate::support;

use support::Daemon;
use support::dns::{Behaviour, TestDns, Zone};
use support::page::{self, HOSTILE};

/// Where `needle` is in `page`, failing with the page when absent.
fn at(page: &str, needle: &str) -> usize {
    page.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not on the page:\n{page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landing_page_puts_broken_domains_first_and_filters() {
    let world = page::start().await;
    let daemon = &world.daemon;

    let (status, landing) = daemon.get("/").await;
    assert_eq!(status, 200);
    at(
        &landing,
        "3 of 15 domains need attention · 1 of 3 resolvers down · last round finished ",
    );
    at(&landing, "<meta http-equiv=\"refresh\" content=\"60\">");
    // Broken before healthy, though the config lists six healthy domains first.
    assert!(at(&landing, "id=\"d-example.com\"") < at(&landing, ">shop01.test</a>"));
    assert!(at(&landing, "id=\"d-xss.test\"") < at(&landing, "Healthy (12)"));
    // The dead resolver is named once, in the resolver panel, not under every record.
    assert_eq!(landing.matches(">dead<").count(), 1, "{landing}");
    at(&landing, "Not shown: dead, down (see Resolvers).");
    // Nothing from DNS becomes markup: no script element at all, the hostile name escaped.
    assert!(!landing.contains("<script"), "{landing}");
    at(
        &landing,
        r"\&lt;script\&gt;alert\(1\)\&lt;\/script\&gt;.evil.test",
    );

    let (_, still) = daemon.get("/?refresh=0").await;
    assert!(!still.contains("http-equiv=\"refresh\""));
    at(&still, "href=\"/\">reload this page every 60 s</a>");

    let (_, problems) = daemon.get("/?problems=1").await;
    assert!(!problems.contains("Healthy ("), "{problems}");
    at(&problems, "Need attention (3)");

    let (_, shops) = daemon.get("/?q=SHOP0").await;
    at(&shops, "Healthy (9)");
    assert!(!shops.contains("Need attention"), "{shops}");
    at(&shops, "value=\"shop0\"");

    let (_, none) = daemon.get("/?q=%3Cb%3Ex&problems=1").await;
    at(
        &none,
        "No domain matches “&lt;b&gt;x” among those that need attention.",
    );

    // HEAD answers without a body.
    let (status, body) = support::http_request(daemon.addr, "HEAD", "/").await;
    assert_eq!((status, body.as_str()), (200, ""));
    world.daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_domain_has_a_page_with_every_answer() {
    let world = page::start().await;
    let daemon = &world.daemon;

    // Any case, with the trailing dot.
    let (status, example) = daemon.get("/domain/EXAMPLE.com.").await;
    assert_eq!(status, 200, "{example}");
    at(&example, "example.com: 10 of 13 records need attention");
    at(&example, "<code>missing._domainkey.example.com</code>");
    // Open, with every resolver, the dead one too.
    assert!(!example.contains("<details>"));
    at(&example, "<td>dead</td><td>lookup failed: timeout</td>");
    at(&example, "href=\"/\">all domains</a>");

    let (status, healthy) = daemon.get("/domain/shop03.test").await;
    assert_eq!(status, 200);
    at(&healthy, "shop03.test: every record correct");
    assert_eq!(
        healthy.matches("<span class=\"ok\">correct</span>").count(),
        3
    );

    let (status, hostile) = daemon.get(&format!("/domain/{HOSTILE}")).await;
    assert_eq!(status, 200);
    assert!(!hostile.contains("<script"), "{hostile}");

    let (status, missing) = daemon.get("/domain/nope.test").await;
    assert_eq!(status, 404);
    at(&missing, "No domain nope.test is checked");
    let (status, odd) = daemon.get("/domain/%3Cscript%3E").await;
    assert_eq!(status, 404);
    at(&odd, "No domain &lt;script&gt; is checked");
    world.daemon.stop().await;
}

#[tokio::test]
async fn many_domains_come_a_page_at_a_time() {
    let dns = TestDns::start(Behaviour::Answer(Zone::new())).await;
    let mut yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}domains:\n",
        support::resolver("r1", dns.addr)
    );
    for i in 0..150 {
        yaml.push_str(&format!(
            "  - domain: d{i:03}.test\n    provider: ses\n    selectors: [s1]\n"
        ));
    }
    let daemon = Daemon::start(&yaml).await;
    daemon.wait_rounds(1.0).await;

    let (_, first) = daemon.get("/?refresh=0").await;
    at(&first, "150 of 150 domains need attention");
    at(&first, "Domains 1–100 of 150");
    at(&first, "<a href=\"/?page=2&amp;refresh=0\">Next page »</a>");
    assert_eq!(first.matches("<article ").count(), 100);
    assert!(first.contains(">d099.test</a>") && !first.contains(">d100.test</a>"));

    let (_, second) = daemon.get("/?page=2&refresh=0").await;
    at(&second, "Domains 101–150 of 150");
    at(&second, "<a href=\"/?refresh=0\">« Previous page</a>");
    assert_eq!(second.matches("<article ").count(), 50);
    // Past the end: the last page.
    let (_, past) = daemon.get("/?page=99&refresh=0").await;
    at(&past, "Domains 101–150 of 150");
    at(
        &past,
        "<a href=\"/?page=2\">reload this page every 60 s</a>",
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_failed_reload_is_said_at_the_top_while_the_old_config_stays() {
    let dns = TestDns::start(Behaviour::Answer(Zone::new())).await;
    let dir = support::TempDir::new("page-reload");
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}domains:\n  - domain: a.test\n    provider: ses\n    selectors: [s1]\n",
        support::resolver("r1", dns.addr)
    );
    let file = dir.write("config.yaml", &yaml);
    let options = dkim_exporter::Options {
        config_file: Some(file.clone()),
        ..dkim_exporter::Options::default()
    };
    let daemon = Daemon::start_with(&yaml, options).await;
    daemon.wait_rounds(1.0).await;
    std::fs::write(&file, "domains: [").unwrap();
    let (status, _) = support::http_request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(status, 500);
    let (_, landing) = daemon.get("/").await;
    at(
        &landing,
        "<p class=\"verdict bad\">The latest config reload failed: ",
    );
    at(&landing, "config.yaml:");
    at(&landing, "stays in force.</p>");
    at(&landing, ">a.test</a>");
    // A good reload clears it.
    std::fs::write(&file, &yaml).unwrap();
    let (status, _) = support::http_request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(status, 200);
    let (_, landing) = daemon.get("/").await;
    assert!(!landing.contains("reload failed"), "{landing}");
    daemon.stop().await;
}
