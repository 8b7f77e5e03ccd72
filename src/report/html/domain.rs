//! A domain's own page, `/domain/{name}`: everything known about it, every resolver's and
//! nameserver's answer for every record, open. Alert descriptions link here.

use std::fmt::Write as _;

use super::landing::ses_lines;
use super::{Overview, PageQuery, esc, nav, open, receivers, record, when};
use crate::records::shard::Shard;
use crate::report::{Report, Status};
use crate::ses::Discovered;
use crate::state::State;

/// The page of `name` (any case, with or without the trailing dot); `None` when no such
/// domain is checked.
pub fn domain_page(
    state: &State,
    discovered: &[Discovered],
    overview: &Overview<'_>,
    name: &str,
    query: &PageQuery,
) -> Option<String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let domain = state.domains().iter().find(|d| d.name == name)?;
    let report = Report::of_domains(state, [domain])
        .with_ses(discovered, state, overview.now)
        .with_receivers(overview.receivers());
    let report = report.domains.first()?;
    let back = PageQuery {
        refresh: query.refresh,
        ..PageQuery::default()
    }
    .url(1);

    let mut html = String::with_capacity(8192 + report.records.len() * 2048);
    open(&mut html, &format!("{name} · DKIM Exporter"), query.refresh);
    nav(&mut html, overview, &back);
    let not_correct = report
        .records
        .iter()
        .filter(|r| r.status != Status::Correct)
        .count();
    let (class, verdict) = match report.status {
        Status::Correct => ("ok", format!("{name}: every record correct")),
        Status::Problem if not_correct == 0 => ("bad", format!("{name}: SES reports trouble")),
        Status::Problem => (
            "bad",
            format!(
                "{name}: {not_correct} of {} records need attention",
                report.records_checked
            ),
        ),
        Status::Unknown => ("warn", format!("{name}: not known yet")),
    };
    let _ = write!(
        html,
        "<h1 class=\"verdict {class}\" id=\"verdict\">{}</h1><p class=\"meta\">",
        esc(&verdict)
    );
    match domain.last_check {
        Some(at) => {
            let _ = write!(
                html,
                "All records last checked {}",
                esc(&when(at, overview.now))
            );
        }
        None => html.push_str("Not every record has been checked yet"),
    }
    let mut nameservers: Vec<&str> = state
        .records()
        .get(domain.records.clone())
        .unwrap_or_default()
        .iter()
        .flat_map(|r| {
            r.nameservers
                .iter()
                .map(|(n, _)| n.trim_start_matches("auth:"))
        })
        .collect();
    nameservers.sort_unstable();
    nameservers.dedup();
    if !nameservers.is_empty() {
        let _ = write!(html, " · nameservers: {}", esc(&nameservers.join(", ")));
    }
    let _ = write!(html, " · <a href=\"{}\">all domains</a></p>", esc(&back));
    ses_lines(&mut html, report);
    receivers(&mut html, report, true);
    html.push_str("<h2>Records</h2>");
    for r in &report.records {
        record(&mut html, r, None);
    }
    html.push_str("</body></html>\n");
    Some(html)
}

/// The page for a name no domain of this replica has.
pub fn no_such_domain(overview: &Overview<'_>, name: &str) -> String {
    let mut html = String::with_capacity(4096);
    open(&mut html, "Not found · DKIM Exporter", false);
    nav(&mut html, overview, "/");
    let (shard, _) = overview.shard;
    let elsewhere = if shard.is_whole() {
        String::new()
    } else {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let owner = (0..shard.count)
            .map(|index| Shard { index, ..shard })
            .find(|s| s.owns(&name))
            .unwrap_or(shard);
        format!(
            "<p>This replica is shard {shard}; if {} is configured, the replica of shard \
             {owner} checks it.</p>",
            esc(&name)
        )
    };
    let _ = writeln!(
        html,
        "<h1 class=\"verdict warn\">No domain {} is checked</h1>{elsewhere}\
         <p><a href=\"/\">All domains</a></p></body></html>",
        esc(name)
    );
    html
}
