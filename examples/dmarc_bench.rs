//! Run: `cargo run --release --example dmarc_bench [-- REPORTS DOMAINS]` (default: 50000 1000).
//!
//! What DMARC aggregate reports cost (issue 22): REPORTS reports about DOMAINS domains, spread
//! over 7 days, each a gzip file of a few rows as Google and Microsoft send them, written to a
//! scratch directory; then read as a `directory:` source reads them (reports read per second),
//! held (resident memory per report held in the window), and counted against the watched
//! domains as the exporter does after every read (time per count). It prints figures; it
//! asserts nothing, so it is not a test.
#![allow(clippy::print_stdout)]

use std::collections::HashSet;
use std::io::Write as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use dkim_exporter::dmarc::Limits;
use dkim_exporter::dmarc::source::{Holding, read_directory};
use dkim_exporter::dmarc::tally::{Judging, Watched, tally};

/// Reporters, as `org_name` says.
const REPORTERS: [&str; 4] = ["google.com", "Microsoft", "Yahoo", "Mail.Ru"];

fn main() {
    let mut args = std::env::args().skip(1);
    let reports: usize = args.next().map_or(50_000, |a| a.parse().expect("REPORTS"));
    let domains: usize = args.next().map_or(1_000, |a| a.parse().expect("DOMAINS"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let dir = std::env::temp_dir().join(format!("dmarc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");

    let started = Instant::now();
    let mut bytes = 0u64;
    for i in 0..reports {
        let domain = format!("d{}.example", i % domains);
        let end = now - (i as u64 * 7 * 86_400 / reports as u64);
        let xml = report(REPORTERS[i % REPORTERS.len()], i, end, &domain);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(xml.as_bytes()).expect("gzip");
        let gz = gz.finish().expect("gzip");
        bytes += gz.len() as u64;
        std::fs::write(dir.join(format!("{i}.xml.gz")), gz).expect("write a report");
    }
    println!(
        "wrote {reports} reports about {domains} domains ({:.1} MB gzip) in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let before = rss_kib();
    let mut holding = Holding::default();
    let started = Instant::now();
    read_directory(&dir, &mut holding, None, &Limits::default(), |_, _| {}).expect("read");
    let took = started.elapsed().as_secs_f64();
    let held = holding.reports();
    let after = rss_kib();
    println!(
        "read {} reports from the directory in {took:.2} s: {:.0} reports/s",
        held.len(),
        held.len() as f64 / took
    );
    println!(
        "resident memory: {before} KiB before, {after} KiB holding them: {:.0} bytes per report held; VmHWM {} KiB",
        (after.saturating_sub(before)) as f64 * 1024.0 / held.len() as f64,
        hwm_kib()
    );

    let started = Instant::now();
    holding = {
        let mut again = holding;
        read_directory(&dir, &mut again, None, &Limits::default(), |_, _| {}).expect("read");
        again
    };
    println!(
        "the next read, nothing changed: {:.3} s",
        started.elapsed().as_secs_f64()
    );

    let names: Vec<String> = (0..domains).map(|i| format!("d{i}.example")).collect();
    let selectors: HashSet<&str> = ["s1", "s2"].into();
    let watched: Watched = names
        .iter()
        .map(|n| (n.as_str(), selectors.clone()))
        .collect();
    let judging = Judging {
        now,
        window: 7 * 86_400,
        fail_share: 0.2,
        min_messages: 50,
        max_selectors: 20,
    };
    let held = holding.reports();
    let runs = 5;
    let started = Instant::now();
    let mut counted = 0;
    for _ in 0..runs {
        counted = tally([("files", held.as_slice())], &watched, &judging)
            .domains
            .len();
    }
    println!(
        "one count of {} reports against {domains} watched domains: {:.1} ms ({counted} domains reported)",
        held.len(),
        started.elapsed().as_secs_f64() * 1000.0 / runs as f64
    );
    println!("VmHWM at the end: {} KiB", hwm_kib());
    drop(holding);
    std::fs::remove_dir_all(&dir).expect("remove the scratch directory");
}

/// One report of three rows: mail signed by s1 (passing) and s2 (failing at one reporter
/// in ten), and a forwarded message whose signature broke.
fn report(org: &str, id: usize, end: u64, domain: &str) -> String {
    let s2 = if id.is_multiple_of(10) {
        "fail"
    } else {
        "pass"
    };
    let row = |count: u32, dkim: &str, selector: &str, result: &str| {
        format!(
            "<record><row><source_ip>192.0.2.{}</source_ip><count>{count}</count>\
             <policy_evaluated><disposition>none</disposition><dkim>{dkim}</dkim><spf>pass</spf>\
             </policy_evaluated></row><identifiers><header_from>{domain}</header_from></identifiers>\
             <auth_results><dkim><domain>{domain}</domain><selector>{selector}</selector>\
             <result>{result}</result></dkim><spf><domain>{domain}</domain><result>pass</result>\
             </spf></auth_results></record>",
            id % 250
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><feedback><report_metadata><org_name>{org}</org_name>\
         <email>noreply-dmarc@{org}</email><report_id>{id}</report_id><date_range><begin>{}</begin>\
         <end>{end}</end></date_range></report_metadata><policy_published><domain>{domain}</domain>\
         <adkim>r</adkim><aspf>r</aspf><p>reject</p><pct>100</pct></policy_published>{}{}{}</feedback>",
        end - 86_400,
        row(40, "pass", "s1", "pass"),
        row(12, s2, "s2", s2),
        row(1, "fail", "s1", "fail"),
    )
}

/// A line of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l[field.len()..].trim().trim_end_matches(" kB").parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

fn hwm_kib() -> u64 {
    status_kib("VmHWM:")
}
