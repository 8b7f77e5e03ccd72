//! Run: `cargo run --release --example alloc_bench [-- DOMAINS]` (default: 300).
//!
//! Heap allocations per record check, counted by dhat's allocator (in testing mode: counts
//! only, no profile file): N domains × 3 SES records, every one correct, checked in one round on
//! 2 loopback resolvers (the test DNS server of `tests/integration/support/dns.rs`, in a child process so
//! that its allocations are not counted), then the same round again. A change that doubles the allocations of a check doubles the figure. It prints
//! figures; it asserts nothing, so it is not a test.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/integration/support/dns.rs"]
#[allow(dead_code)]
mod dns;

use std::sync::Arc;
use std::time::Instant;

use dkim_exporter::metrics::Metrics;
use dkim_exporter::scheduler::{Reuse, Work, run_once};
use dkim_exporter::state::{SharedState, State};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Resolvers every record is checked on.
const RESOLVERS: usize = 2;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let domains: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(300);
    if args.first().map(String::as_str) == Some("serve") {
        return serve(domains).await;
    }
    // The DNS servers run in a child process, so that their allocations are not counted.
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["serve", &domains.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut addresses = String::new();
    {
        use std::io::BufRead as _;
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        for _ in 0..RESOLVERS {
            addresses.push_str(&lines.next().unwrap().unwrap());
            addresses.push('\n');
        }
    }
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut yaml = String::from("interval: 1h\ntimeout: 2s\nauthoritative: false\nresolvers:\n");
    for (k, address) in addresses.lines().enumerate() {
        yaml.push_str(&format!(
            "  - name: r{k}\n    address: {address}\n    max_queries_per_second: 0\n"
        ));
    }
    yaml.push_str("domains:\n");
    for i in 0..domains {
        yaml.push_str(&format!(
            "  - domain: d{i}.bench\n    provider: ses\n    selectors: [t0x{i}, t1x{i}, t2x{i}]\n"
        ));
    }
    let dkim_exporter::config::Loaded {
        mut config,
        records,
    } = dkim_exporter::config::parse(&yaml, "bench.yaml").unwrap();
    // Every check at once, as /probe does, instead of spread over the interval.
    config.interval = std::time::Duration::ZERO;
    let metrics = Arc::new(Metrics::new().unwrap());
    let work = Arc::new(Work::from_config(
        &config,
        &records,
        &metrics,
        53,
        Reuse::Nothing,
    ));
    let mut state = State::default();
    state.reconcile(&config, &records);
    let state = SharedState::new(state);
    let checks = domains * 3 * RESOLVERS;
    println!(
        "{domains} domains, {} records, {checks} checks a round (and a key lookup a record)",
        domains * 3
    );
    for round in ["first round (the state fills)", "second round (steady)"] {
        let before = dhat::HeapStats::get();
        let started = Instant::now();
        run_once(work.clone(), state.clone()).await;
        let took = started.elapsed();
        let after = dhat::HeapStats::get();
        let blocks = after.total_blocks - before.total_blocks;
        let bytes = after.total_bytes - before.total_bytes;
        let healthy = state
            .read()
            .records()
            .iter()
            .filter(|r| r.findings.is_empty())
            .count();
        println!(
            "  {round:<30} {:>6.1} allocations, {:>6.0} bytes a check; live heap {:>5} KiB; {healthy} of {} records correct; {:.2} s",
            blocks as f64 / checks as f64,
            bytes as f64 / checks as f64,
            after.curr_bytes / 1024,
            domains * 3,
            took.as_secs_f64(),
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The child: serves the zone of `domains` domains on RESOLVERS loopback servers, prints their
/// addresses, and runs until killed.
async fn serve(domains: usize) {
    let key = rsa_key();
    let mut zone = dns::Zone::new();
    for i in 0..domains {
        for s in 0..3 {
            let target = format!("t{s}x{i}.dkim.amazonses.com.");
            zone = zone
                .cname(&format!("t{s}x{i}._domainkey.d{i}.bench."), &target)
                .txt(&target, &["v=DKIM1; k=rsa; p=", &key]);
        }
    }
    let mut servers = Vec::new();
    for _ in 0..RESOLVERS {
        let server = dns::TestDns::start(dns::Behaviour::Answer(zone.clone())).await;
        println!("{}", server.addr);
        servers.push(server);
    }
    std::future::pending::<()>().await;
}

/// A 2048-bit RSA public key, base64 SubjectPublicKeyInfo, as `p=` holds it.
fn rsa_key() -> String {
    use base64::Engine as _;
    use rsa::pkcs8::EncodePublicKey as _;
    let key = rsa::PrivateKey::new_unchecked(&mut getrandom::SysRng, 2048).unwrap();
    let der = key.to_public_key().to_public_key_der().unwrap();
    base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
}
