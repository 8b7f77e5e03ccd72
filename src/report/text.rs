//! The report for a person at a terminal, coloured when it is one.

use std::fmt::Write as _;

use super::{ProblemReport, ReceiversReport, RecordReport, Report, SesReport, Status, Tone};

impl Report {
    /// The report for a terminal; `colour` adds ANSI colours.
    pub fn to_text(&self, colour: bool) -> String {
        let paint = |code: &str, text: &str| {
            if colour {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_string()
            }
        };
        let mut out = String::new();
        for domain in &self.domains {
            let broken = domain
                .records
                .iter()
                .filter(|r| r.status != Status::Correct)
                .count();
            let summary = match broken {
                0 => paint("32", "all records correct"),
                n => paint(
                    "31",
                    &format!("{n} of {} records need attention", domain.records_checked),
                ),
            };
            let _ = writeln!(out, "{}: {summary}", paint("1", &domain.domain));
            for ses in &domain.ses {
                write_ses(&mut out, ses, &paint);
            }
            if let Some(receivers) = &domain.receivers {
                write_receivers(&mut out, receivers);
            }
            for record in &domain.records {
                write_record(&mut out, record, &paint);
            }
        }
        let summary = &self.summary;
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let _ = writeln!(
            out,
            "{}, {}: {} correct, {} with problems, {} unknown; {}",
            plural(summary.domains, "domain", "domains"),
            plural(summary.records, "record", "records"),
            summary.correct,
            summary.problems,
            summary.unknown,
            match summary.domains_needing_attention {
                0 => paint("32", "all correct"),
                1 => paint("31", "1 domain needs attention"),
                n => paint("31", &format!("{n} domains need attention")),
            }
        );
        out
    }
}

/// What receivers reported about the domain: the messages, each selector's signatures, and
/// the selectors nobody configured.
fn write_receivers(out: &mut String, receivers: &ReceiversReport) {
    let _ = writeln!(
        out,
        "  receivers (last {}): {}; newest report ends {}",
        receivers.window,
        receivers.summary(),
        receivers.last_report
    );
    if receivers.spf_passed_dkim_failed > 0 {
        let _ = writeln!(
            out,
            "    {} messages passed SPF but not DKIM: a sender of the domain's mail does not sign",
            receivers.spf_passed_dkim_failed
        );
    }
    for selector in &receivers.selectors {
        let reporters = if selector.reporters.is_empty() {
            String::new()
        } else {
            format!(": {}", selector.reporters)
        };
        let _ = writeln!(
            out,
            "    {}: {}{reporters}",
            selector.selector,
            selector.summary()
        );
    }
    if !receivers.not_configured.is_empty() {
        let _ = writeln!(
            out,
            "    seen signing, not configured (checked below): {}",
            receivers.not_configured.join(", ")
        );
    }
}

/// SES's view of one identity: its status, signing, key, and problems.
fn write_ses(out: &mut String, ses: &SesReport, paint: &impl Fn(&str, &str) -> String) {
    let status = ses.status.unwrap_or("unknown").to_ascii_uppercase();
    let status = match ses.status {
        Some("success") => paint("32", &status),
        Some("pending" | "not_started") => paint("33", &status),
        _ => paint("31", &status),
    };
    let signing = if ses.signing_enabled {
        paint("32", "signing enabled")
    } else {
        paint("31", "signing disabled")
    };
    let key = ses
        .key_length
        .map(|bits| format!(", key {bits} bits"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  SES {} ({}): DKIM status {status}, {signing}{key}",
        ses.source, ses.region
    );
    write_problems(out, &ses.problems, paint);
}

/// One record: its verdict and what it expects, what each resolver said, the key's chain, and
/// its problems.
fn write_record(out: &mut String, record: &RecordReport, paint: &impl Fn(&str, &str) -> String) {
    let status = match record.status {
        Status::Correct => paint("32", "OK     "),
        Status::Problem => paint("31", "PROBLEM"),
        Status::Unknown => paint("33", "UNKNOWN"),
    };
    let key = record
        .key_bits
        .map(|bits| {
            let tags = record
                .key_tags
                .iter()
                .filter(|t| !t.starts_with("k=rsa"))
                .map(|t| format!(" {t}"))
                .collect::<String>();
            format!(", key {bits} bits{tags}")
        })
        .unwrap_or_default();
    let from = record
        .from_ses
        .as_ref()
        .map(|source| format!(", from SES {source}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {status} {}  (expects {}{key}{from})",
        record.name,
        record.expected()
    );
    let width = record
        .resolvers
        .iter()
        .map(|r| r.resolver.len())
        .max()
        .unwrap_or(0);
    for resolver in &record.resolvers {
        let (said, tone) = resolver.said();
        let said = match tone {
            Tone::Correct => paint("32", &said),
            Tone::Wrong => paint("31", &said),
            Tone::Failed => paint("33", &said),
            Tone::NotAsked => said,
        };
        let _ = writeln!(out, "      {:width$}  {said}", resolver.resolver);
    }
    if let Some(fingerprint) = &record.key_fingerprint {
        match (&record.key_replaced, &record.key_first_seen) {
            (Some(old), Some(at)) => {
                let _ = writeln!(
                    out,
                    "      key {fingerprint}, changed at {at}: it replaced {old}"
                );
            }
            _ => {
                let _ = writeln!(out, "      key {fingerprint}");
            }
        }
    }
    if let Some(at) = &record.signature_expiry {
        let _ = writeln!(
            out,
            "      DNSSEC signatures over the record expire at {at}"
        );
    }
    if !record.key_chain.is_empty() {
        let _ = writeln!(
            out,
            "      chain: {} -> {}",
            record.expected_target.as_deref().unwrap_or_default(),
            record.key_chain.join(" -> ")
        );
    }
    if record.inactive_key {
        let _ = writeln!(
            out,
            "      note: the inactive key of a rotating pair: its target holds no key \
             until the provider rotates to it, while the other selector is healthy"
        );
    }
    write_problems(out, &record.problems, paint);
}

/// Each problem with what was seen, then its fix.
fn write_problems(
    out: &mut String,
    problems: &[ProblemReport],
    paint: &impl Fn(&str, &str) -> String,
) {
    for problem in problems {
        let _ = writeln!(
            out,
            "      {} {}",
            paint("31", &format!("problem {}:", problem.problem)),
            problem.detail
        );
        let _ = writeln!(out, "        fix: {}", problem.fix);
        if let Some(paste) = &problem.paste {
            let _ = writeln!(
                out,
                "        paste: name {}  type {}  value {}",
                paste.host_form_name, paste.record_type, paste.value
            );
            let _ = writeln!(out, "        zone file: {}", paste.zone_file);
            let _ = writeln!(out, "        where: {}", paste.place());
        }
    }
}
