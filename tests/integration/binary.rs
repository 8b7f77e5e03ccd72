//! The binary as a user runs it: flags, logs, a scrape, and a clean exit on SIGTERM.

use crate::support;

use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;

use support::dns::{Behaviour, TestDns, Zone};
use support::wait_line;

/// Starts the binary with this process's environment.
fn spawn(args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    support::spawn_binary(args, Default::default())
}

fn signal(child: &Child, signal: &str) {
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

fn wait_exit(child: &mut Child) -> i32 {
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().expect("exited normally");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("did not exit within 15s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_logs_logfmt_reloads_on_sighup_and_exits_zero_on_sigterm() {
    let dns = TestDns::start(Behaviour::Answer(
        Zone::new().cname("s1._domainkey.example.com.", "s1.dkim.amazonses.com."),
    ))
    .await;
    let dir = support::TempDir::new("binary");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "interval: 1s\ntimeout: 1s\nresolvers:\n  - name: local\n    address: {}\ndomains:\n  - domain: example.com\n    provider: ses\n    selectors: [s1]\n",
            dns.addr
        ),
    )
    .unwrap();

    let (mut child, lines) = spawn(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address=127.0.0.1:0",
        "--log.level=debug",
    ]);
    let listening = wait_line(&lines, "msg=listening");
    assert!(
        listening.starts_with("ts=") && listening.contains(" level=info "),
        "{listening}"
    );
    let address = listening
        .split_whitespace()
        .find_map(|field| field.strip_prefix("address="))
        .unwrap()
        .parse()
        .unwrap();

    // --log.level=debug shows each query and each check, in plain words (no Rust debug text).
    let query = wait_line(&lines, "msg=query ");
    assert!(query.contains(" level=debug "), "{query}");
    for field in [
        " resolver=",
        " query=",
        " record_type=",
        " rcode=",
        " latency_ms=",
    ] {
        assert!(query.contains(field), "{field} not in {query}");
    }
    let checked = wait_line(&lines, "msg=checked");
    assert!(checked.contains(" level=debug "), "{checked}");
    assert!(checked.contains(" record_type=cname "), "{checked}");
    assert!(!checked.contains("Cname("), "{checked}");

    // Ready once a round is done, with the record reported correct.
    let mut ready = false;
    for _ in 0..200 {
        if support::http_get(address, "/-/ready").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "not ready within 10s");
    let (status, body) = support::http_get(address, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(
            r#"dkim_record_correct{domain="example.com",selector="s1",resolver="local"} 1"#
        ),
        "{body}"
    );

    // SIGHUP reloads: a second domain appears.
    std::fs::write(
        &config,
        format!(
            "interval: 1s\ntimeout: 1s\nresolvers:\n  - name: local\n    address: {}\ndomains:\n  - domain: example.com\n    provider: ses\n    selectors: [s1]\n  - domain: example.net\n    provider: ses\n    selectors: [s2]\n",
            dns.addr
        ),
    )
    .unwrap();
    signal(&child, "-HUP");
    wait_line(&lines, "msg=\"config reloaded\"");
    let (_, body) = support::http_get(address, "/metrics").await;
    assert!(body.contains("dkim_exporter_records 2\n"), "{body}");

    signal(&child, "-TERM");
    assert_eq!(wait_exit(&mut child), 0);
}

#[test]
fn invalid_config_stops_start_with_the_error_in_json_logs() {
    let bad = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testdata/bad/unknown_region.yaml"
    );
    let (mut child, lines) = spawn(&[
        "--config.file",
        bad,
        "--web.listen-address=127.0.0.1:0",
        "--log.format=json",
    ]);
    let line = wait_line(&lines, "cannot load config");
    let parsed: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    // The keys logfmt uses, in lower case.
    assert_eq!(parsed["level"], "error");
    assert_eq!(parsed["msg"], "cannot load config");
    assert!(parsed["ts"].as_str().unwrap().ends_with('Z'), "{line}");
    assert_eq!(parsed["source"], "dkim_exporter");
    assert!(
        parsed["error"]
            .as_str()
            .unwrap()
            .ends_with(r#"unknown_region.yaml:4:13: domains[0].region: unknown region "eu-south-3": give an AWS region such as us-east-1 or eu-south-1"#),
        "{line}"
    );
    assert_eq!(wait_exit(&mut child), 1);
}

#[test]
fn bad_flags_are_usage_errors() {
    let (mut child, _lines) = spawn(&["--log.level=verbose"]);
    assert_eq!(wait_exit(&mut child), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tell_the_story_of_a_record_and_a_resolver() {
    let broken = Zone::new().a("example.com.", [192, 0, 2, 1]);
    let fixed = broken
        .clone()
        .cname("s1._domainkey.example.com.", "s1.dkim.amazonses.com.");
    let dns = TestDns::start(Behaviour::Answer(broken)).await;
    let dead = TestDns::start(Behaviour::Silent).await;
    let dir = support::TempDir::new("binary-events");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "interval: 1s\ntimeout: 500ms\nauthoritative: false\nresolvers:\n  - name: local\n    address: {}\n  - name: dead\n    address: {}\ndomains:\n  - domain: example.com\n    provider: ses\n    selectors: [s1]\n",
            dns.addr, dead.addr
        ),
    )
    .unwrap();
    let (mut child, lines) = spawn(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address=127.0.0.1:0",
    ]);
    // At info: the problem appears with its fix, the dead resolver goes down with its reason,
    // and the first round completes.
    let appeared = wait_line(&lines, "msg=\"problem appeared\"");
    assert!(appeared.contains(" level=info "), "{appeared}");
    for field in [
        "domain=example.com",
        "selector=s1",
        "problem=missing",
        "fix=",
    ] {
        assert!(appeared.contains(field), "{field}: {appeared}");
    }
    let down = wait_line(&lines, "msg=\"resolver is down\"");
    assert!(
        down.contains("resolver=dead") && down.contains("reason=timeout"),
        "{down}"
    );
    wait_line(&lines, "msg=\"first round complete\"");
    // The record is fixed and the resolver comes back: both are said.
    dns.set(Behaviour::Answer(fixed.clone()));
    dead.set(Behaviour::Answer(fixed));
    let cleared = wait_line(&lines, "msg=\"problem cleared\"");
    assert!(cleared.contains("problem=missing"), "{cleared}");
    let back = wait_line(&lines, "msg=\"resolver is working again\"");
    assert!(back.contains("resolver=dead"), "{back}");
    signal(&child, "-TERM");
    assert_eq!(wait_exit(&mut child), 0);
}
