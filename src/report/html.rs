//! The landing page: the report as HTML, with links to the other endpoints.

use std::fmt::Write as _;

use super::{ProblemReport, Report, Status};
use crate::scheduler::unix_now;
use crate::ses::Discovered;
use crate::state::State;

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The landing page: links, then per domain a table of every record, what each resolver
/// returned, and each problem with its fix.
pub fn landing_page(state: &State, discovered: &[Discovered], telemetry_path: &str) -> String {
    let report = Report::from_state(state).with_ses(discovered, state, unix_now());
    let mut html = String::with_capacity(4096 + state.records.len() * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>DKIM Exporter</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:2em}}\
         td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}\
         ul{{margin:0;padding-left:1.2em}}.correct{{background:#e6f4ea}}.problem{{background:#fce8e6}}\
         .unknown{{background:#f1f3f4}}.fix{{color:#555}}</style></head>\
         <body><h1>DKIM Exporter</h1><p>Version {}. \
         <a href=\"{}\">Metrics</a> · <a href=\"/-/healthy\">Health</a> · <a href=\"/-/ready\">Readiness</a></p>\
         <p>Check rounds completed: {}</p>",
        env!("CARGO_PKG_VERSION"),
        esc(telemetry_path),
        state.rounds.completed,
    );
    if report.domains.is_empty() {
        html.push_str("<p>No records are configured.</p></body></html>\n");
        return html;
    }
    for domain in &report.domains {
        let _ = write!(
            html,
            "<h2>{}</h2><table><thead><tr><th>Record</th><th>Status</th><th>Expected</th>\
             <th>What each resolver returned</th><th>Problems and fixes</th></tr></thead><tbody>",
            esc(&domain.domain)
        );
        for ses in &domain.ses {
            let class = if ses.problems.is_empty() {
                "correct"
            } else {
                "problem"
            };
            let key = ses
                .key_length
                .map(|bits| format!("<br>key: {bits} bits"))
                .unwrap_or_default();
            let _ = write!(
                html,
                "<tr class=\"{class}\"><td>Amazon SES identity ({} · {})</td><td>{}</td>\
                 <td>signing {}{key}</td><td></td><td><ul>",
                esc(&ses.source),
                esc(&ses.region),
                esc(&ses.status.unwrap_or("unknown").to_ascii_uppercase()),
                if ses.signing_enabled {
                    "enabled"
                } else {
                    "disabled"
                },
            );
            problem_items(&mut html, &ses.problems);
            html.push_str("</ul></td></tr>");
        }
        for record in &domain.records {
            let (status, class) = match record.status {
                Status::Correct => ("correct", "correct"),
                Status::Problem => ("problem", "problem"),
                Status::Unknown
                    if record
                        .resolvers
                        .iter()
                        .all(|r| r.record_type.is_none() && r.failure.is_none()) =>
                {
                    ("not checked yet", "unknown")
                }
                Status::Unknown => ("unknown: no resolver answered", "unknown"),
            };
            let mut key = record
                .key_bits
                .map(|bits| format!("<br>key: {bits} bits"))
                .unwrap_or_default();
            if let Some(source) = &record.from_ses {
                let _ = write!(key, "<br>from SES {}", esc(source));
            }
            if !record.key_chain.is_empty() {
                let _ = write!(key, "<br>chain: {}", esc(&record.key_chain.join(" → ")));
            }
            if record.inactive_key {
                key.push_str("<br>inactive key of a rotating pair (no key until rotation)");
            }
            let _ = write!(
                html,
                "<tr class=\"{class}\"><td>{}</td><td>{status}</td><td>{}{key}</td><td><ul>",
                esc(&record.name),
                esc(&record.expected()),
            );
            for resolver in &record.resolvers {
                let (said, _) = resolver.said();
                let _ = write!(html, "<li>{}: {}</li>", esc(&resolver.resolver), esc(&said));
            }
            html.push_str("</ul></td><td><ul>");
            problem_items(&mut html, &record.problems);
            html.push_str("</ul></td></tr>");
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</body></html>\n");
    html
}

/// One list item per problem: its name, what was seen, and the fix.
fn problem_items(html: &mut String, problems: &[ProblemReport]) {
    for problem in problems {
        let _ = write!(
            html,
            "<li><b>{}</b>: {}<br><span class=\"fix\">Fix: {}</span>",
            esc(problem.problem),
            esc(&problem.detail),
            esc(problem.fix)
        );
        if let Some(paste) = &problem.paste {
            let _ = write!(
                html,
                "<br><span class=\"fix\">Name <code>{}</code>, type {}, value <code>{}</code>; \
                 zone file: <code>{}</code>; {}</span>",
                esc(&paste.host_form_name),
                paste.record_type,
                esc(&paste.value),
                esc(&paste.zone_file),
                esc(&paste.place()),
            );
        }
        html.push_str("</li>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
