//! The status page in a real browser: headless Chromium through chromedriver, on the test DNS
//! world with a dead resolver, broken domains, long names and answers holding markup.
//!
//! Needs `chromium` and `chromium-driver` (Debian), which CI installs: run with
//! `cargo test --test integration -- --ignored browser::`. Screenshots are kept in `target/browser/`.

use crate::support;

use std::path::PathBuf;

use serde_json::Value;
use support::page::{self, HOSTILE, LONG};
use support::webdriver::Driver;

/// The width the issue asks the page to fit without scrolling sideways.
const WIDTH: u32 = 1280;
/// A laptop's first screen.
const HEIGHT: u32 = 800;

/// What the page looks like to the browser, measured in the page.
const MEASURE: &str = r#"
const rect = e => { if (!e) return null; const r = e.getBoundingClientRect();
  return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
const de = document.documentElement;
const fix = document.querySelector('.fix');
const paste = document.querySelector('.paste');
return {
  scrollWidth: de.scrollWidth, innerWidth: window.innerWidth, innerHeight: window.innerHeight,
  overflowing: [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .slice(0, 5).map(e => e.tagName + ' ' + e.className + ': ' + e.textContent.slice(0, 60)),
  verdict: (document.getElementById('verdict') || {}).textContent,
  statuses: [...document.querySelectorAll('[data-status]')].map(e => e.dataset.status),
  fix: rect(fix), fixText: fix ? fix.textContent : null, paste: rect(paste),
  pasteText: paste ? paste.textContent : null,
  scripts: document.scripts.length, images: document.images.length,
  text: document.body.innerText,
  resolvers: [...document.querySelectorAll('#resolvers tbody tr')].map(r => r.innerText),
  background: getComputedStyle(document.body).backgroundColor,
  colour: getComputedStyle(document.body).color,
  openDetails: [...document.querySelectorAll('details')].filter(d => d.open).length,
  details: document.querySelectorAll('details').length,
};
"#;

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts the page fits `WIDTH` without scrolling sideways.
fn fits(page: &Value, what: &str) {
    let inner = page["innerWidth"].as_f64().unwrap();
    assert!(
        (f64::from(WIDTH) - inner).abs() < 1.0,
        "{what}: the window is {inner} px wide, not {WIDTH}"
    );
    assert!(
        page["scrollWidth"].as_f64().unwrap() <= inner,
        "{what}: scrolls sideways ({} > {inner}): {}",
        page["scrollWidth"],
        page["overflowing"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver; CI runs it with --ignored"]
async fn the_status_page_in_a_real_browser() {
    let world = page::start().await;
    let base = format!("http://{}", world.daemon.addr);
    let driver = Driver::start().await;
    let browser = driver.browser(WIDTH, HEIGHT).await;
    let shots = screenshots();

    // The landing page, light.
    browser.open(&format!("{base}/")).await;
    let landing = browser.run(MEASURE).await;
    fits(&landing, "/");
    let verdict = landing["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with(
            "3 of 15 domains need attention · 1 of 3 resolvers down · last round finished "
        ),
        "{verdict}"
    );
    // Broken domains first, then the healthy, whatever the config order.
    let statuses: Vec<&str> = landing["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let first_healthy = statuses.iter().position(|s| *s == "correct").unwrap();
    assert_eq!(first_healthy, 3, "{statuses:?}");
    assert!(
        statuses[first_healthy..].iter().all(|s| *s == "correct"),
        "{statuses:?}"
    );
    assert_eq!(statuses.len(), 15);
    // The first problem's fix and the record to paste are on the first screen, whole.
    let inner_height = landing["innerHeight"].as_f64().unwrap();
    for what in ["fix", "paste"] {
        let rect = &landing[what];
        assert!(
            rect["right"].as_f64().unwrap() <= f64::from(WIDTH)
                && rect["bottom"].as_f64().unwrap() <= inner_height,
            "the first {what} is not on the first screen: {rect} ({})",
            landing[format!("{what}Text")]
        );
    }
    assert!(
        landing["pasteText"]
            .as_str()
            .unwrap()
            .contains("missing._domainkey.example.com. 300 IN CNAME missing.dkim.amazonses.com."),
        "{}",
        landing["pasteText"]
    );
    // The dead resolver is said once, in the panel, with why.
    let resolvers = landing["resolvers"].to_string();
    assert!(
        resolvers.contains("dead\\tdown\\ttimeout on"),
        "{resolvers}"
    );
    let text = landing["text"].as_str().unwrap();
    assert_eq!(text.matches("dead").count(), 1, "{text}");
    // Values from DNS are text: no script or element came from them (an alert would also
    // stop the WebDriver commands that follow), and the markup shows as written.
    assert_eq!(landing["scripts"], 0);
    assert_eq!(landing["images"], 0);
    assert_eq!(landing["openDetails"], 0);
    assert!(landing["details"].as_u64().unwrap() > 10);
    std::fs::write(shots.join("landing.png"), browser.screenshot().await).unwrap();
    // The README's picture (docs/status-page.png) is this one, copied when the page changes.
    std::fs::write(
        shots.join("landing-first-screen.png"),
        browser.window_screenshot().await,
    )
    .unwrap();

    // Dark: the same page in the reader's dark colours.
    browser.color_scheme("dark").await;
    let dark = browser.run(MEASURE).await;
    assert_eq!(
        dark["background"], "rgb(13, 17, 23)",
        "{}",
        dark["background"]
    );
    assert_ne!(dark["colour"], landing["colour"]);
    std::fs::write(shots.join("landing-dark.png"), browser.screenshot().await).unwrap();
    browser.color_scheme("light").await;

    // Problems only, filtered: the form works without script.
    browser
        .open(&format!("{base}/?q=test&problems=1&refresh=0"))
        .await;
    let filtered = browser.run(MEASURE).await;
    fits(&filtered, "/?q=test&problems=1");
    let statuses = filtered["statuses"].to_string();
    assert_eq!(statuses, r#"["problem","problem"]"#, "{statuses}");

    // Each domain's own page, open, wide names wrapped.
    for (domain, file) in [
        ("example.com", "domain.png"),
        (HOSTILE, "domain-hostile.png"),
        (LONG, "domain-long.png"),
    ] {
        browser.open(&format!("{base}/domain/{domain}")).await;
        let page = browser.run(MEASURE).await;
        fits(&page, domain);
        assert_eq!(page["scripts"], 0, "{domain}");
        assert_eq!(page["images"], 0, "{domain}");
        assert!(
            page["verdict"].as_str().unwrap().starts_with(domain),
            "{}",
            page["verdict"]
        );
        if domain == HOSTILE {
            // The CNAME target's label of markup, as DNS names are written (hickory escapes
            // the special characters with a backslash), is shown as text.
            let text = page["text"].as_str().unwrap();
            assert!(
                text.contains(r"\<script\>alert\(1\)\<\/script\>.evil.test"),
                "{text}"
            );
        }
        std::fs::write(shots.join(file), browser.screenshot().await).unwrap();
    }
    browser.close().await;
    drop(driver);
    world.daemon.stop().await;
}
