//! The landing page: the verdict in one line, the resolvers, then the domains that need
//! attention with their problems and the records to paste, and the healthy ones a line each.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;

use super::{
    DOMAINS_PER_PAGE, Overview, PageQuery, ResolverRow, ago, domain_path, esc, nav, open,
    problem_list, receivers, record, when,
};
use crate::evidence::FailureReason;
use crate::report::{DomainReport, Report, Status};
use crate::ses::Discovered;
use crate::state::{DomainState, State};

/// Down nameservers named in the resolver panel; the others are counted.
const NAMESERVERS_NAMED: usize = 10;

/// The landing page for `query`. Only the domains of the page shown are reported in full, so
/// the page costs the same at 100 domains as at 100,000.
pub fn landing_page(
    state: &State,
    discovered: &[Discovered],
    overview: &Overview<'_>,
    query: &PageQuery,
) -> String {
    let now = overview.now;
    let verdicts: Vec<Status> = state
        .domains()
        .iter()
        .map(|domain| verdict(state, discovered, domain, now))
        .collect();
    let shown = shown(state, &verdicts, query);
    let pages = shown.len().div_ceil(DOMAINS_PER_PAGE).max(1);
    let page = query.page.min(pages);
    // Past the end reads as the last page, links included.
    let query = &PageQuery {
        page,
        ..query.clone()
    };
    let first = (page - 1) * DOMAINS_PER_PAGE;
    let on_page = &shown[first..shown.len().min(first + DOMAINS_PER_PAGE)];
    let report = Report::of_domains(state, on_page.iter().map(|&i| &state.domains()[i]))
        .with_ses(discovered, state, now)
        .with_receivers(overview.receivers());

    let mut html = String::with_capacity(16 * 1024 + on_page.len() * 2048);
    open(&mut html, "DKIM Exporter", query.refresh);
    nav(&mut html, overview, "/");
    header(&mut html, state, overview, &verdicts, query);
    resolver_panel(&mut html, state, overview);
    if state.domains().is_empty() {
        html.push_str(
            "<h2>Domains</h2><p>No domains are configured: list them under <code>domains:</code> \
             in the config, or discover them with a <code>ses:</code> source.</p></body></html>\n",
        );
        return html;
    }
    filter_form(&mut html, query);
    if shown.is_empty() {
        no_match(&mut html, query);
    }
    // The report keeps the order of the domains it was given.
    let (attention, healthy): (Vec<_>, Vec<_>) = on_page
        .iter()
        .map(|&i| &state.domains()[i])
        .zip(&report.domains)
        .partition(|(_, d)| d.status != Status::Correct);
    let total = |wanted: bool| {
        shown
            .iter()
            .filter(|&&i| (verdicts[i] == Status::Correct) == wanted)
            .count()
    };
    if !attention.is_empty() {
        attention_section(&mut html, &attention, total(false), overview);
    }
    if !healthy.is_empty() {
        healthy_section(&mut html, &healthy, total(true));
    }
    if pages > 1 {
        pager(
            &mut html,
            query,
            pages,
            first..first + on_page.len(),
            shown.len(),
        );
    }
    html.push_str("</body></html>\n");
    html
}

/// The domains the page lists (indices into the state's), after the filter: broken first, then
/// those no resolver answered for, then the healthy; config order within.
fn shown(state: &State, verdicts: &[Status], query: &PageQuery) -> Vec<usize> {
    let mut shown: Vec<usize> = (0..state.domains().len())
        .filter(|&i| state.domains()[i].name.contains(&query.filter))
        .filter(|&i| !query.problems_only || verdicts[i] != Status::Correct)
        .collect();
    shown.sort_by_key(|&i| match verdicts[i] {
        Status::Problem => 0,
        Status::Unknown => 1,
        Status::Correct => 2,
    });
    shown
}

/// Says that no domain matches the filter.
fn no_match(html: &mut String, query: &PageQuery) {
    let _ = write!(
        html,
        "<p>No domain matches{}{}.</p>",
        if query.filter.is_empty() {
            String::new()
        } else {
            format!(" “{}”", esc(&query.filter))
        },
        if query.problems_only {
            " among those that need attention"
        } else {
            ""
        }
    );
}

/// The domains of the page that need attention, a card each, out of `total` in all.
fn attention_section(
    html: &mut String,
    attention: &[(&DomainState, &DomainReport)],
    total: usize,
    overview: &Overview<'_>,
) {
    let _ = write!(html, "<h2>Need attention ({total})</h2>");
    let down: Vec<&str> = overview
        .resolvers
        .iter()
        .filter(|r| r.up == Some(false))
        .map(|r| r.name.as_str())
        .collect();
    // Several broken domains: their names first, so the last is a click away.
    if attention.len() > 1 {
        html.push_str("<p class=\"meta\">");
        for (i, (_, report)) in attention.iter().enumerate() {
            let _ = write!(
                html,
                "{}<a href=\"#{}\">{}</a>",
                if i > 0 { " · " } else { "" },
                esc(&anchor(&report.domain)),
                esc(&report.domain)
            );
        }
        html.push_str("</p>");
    }
    for (domain, report) in attention {
        card(html, report, domain.last_check, overview.now, &down);
    }
}

/// The healthy domains of the page, a line each, out of `total` in all.
fn healthy_section(html: &mut String, healthy: &[(&DomainState, &DomainReport)], total: usize) {
    let _ = write!(html, "<h2>Healthy ({total})</h2><ul class=\"healthy\">");
    for (_, domain) in healthy {
        let _ = write!(
            html,
            "<li class=\"domain-line\" data-status=\"correct\"><a href=\"{}\">{}</a> \
             <span class=\"muted\">{} record{}{}</span></li>",
            esc(&domain_path(&domain.domain)),
            esc(&domain.domain),
            domain.records_checked,
            if domain.records_checked == 1 { "" } else { "s" },
            domain
                .receivers
                .as_ref()
                .map(|r| format!(
                    " · receivers (last {}): {}",
                    esc(&r.window),
                    esc(&r.summary())
                ))
                .unwrap_or_default(),
        );
    }
    html.push_str("</ul>");
}

/// Which domains of `shown` in all the page holds, and links to the pages around it.
fn pager(html: &mut String, query: &PageQuery, pages: usize, on_page: Range<usize>, shown: usize) {
    let page = query.page;
    let _ = write!(
        html,
        "<div class=\"pager\"><span>Domains {}–{} of {}</span>",
        on_page.start + 1,
        on_page.end,
        shown
    );
    if page > 1 {
        let _ = write!(
            html,
            "<a href=\"{}\">« Previous page</a>",
            esc(&query.url(page - 1))
        );
    }
    if page < pages {
        let _ = write!(
            html,
            "<a href=\"{}\">Next page »</a>",
            esc(&query.url(page + 1))
        );
    }
    html.push_str("</div>");
}

/// A domain's verdict without building its report: a problem on any record or SES trouble,
/// else correct when every record is.
fn verdict(state: &State, discovered: &[Discovered], domain: &DomainState, now: f64) -> Status {
    let records = state
        .records()
        .get(domain.records.clone())
        .unwrap_or_default();
    let ses_trouble = discovered.iter().any(|source| {
        source.identity(&domain.name).is_some_and(|identity| {
            !crate::ses::problem::findings(state, source, identity, now).is_empty()
        })
    });
    Status::of_domain(
        records.iter().map(|r| Status::of_record(state, r)),
        ses_trouble,
    )
}

/// The verdict line, the config's state and the round's, and the refresh switch.
fn header(
    html: &mut String,
    state: &State,
    overview: &Overview<'_>,
    verdicts: &[Status],
    query: &PageQuery,
) {
    let (class, verdict) = verdict_line(state, overview, verdicts);
    let _ = write!(
        html,
        "<h1 class=\"verdict {class}\" id=\"verdict\">{}</h1>",
        esc(&verdict)
    );
    if let Some(error) = &overview.reload_error {
        let _ = write!(
            html,
            "<p class=\"verdict bad\">The latest config reload failed: {}. The config loaded \
             {} stays in force.</p>",
            esc(error),
            esc(&when(overview.loaded_at, overview.now))
        );
    }
    meta_line(html, state, overview, verdicts.len(), query);
}

/// The verdict in one line, and its class: the domains, the resolvers, the latest round.
fn verdict_line(
    state: &State,
    overview: &Overview<'_>,
    verdicts: &[Status],
) -> (&'static str, String) {
    let domains = verdicts.len();
    let needing = verdicts.iter().filter(|s| **s != Status::Correct).count();
    let configured = &overview.resolvers;
    let down = configured.iter().filter(|r| r.up == Some(false)).count();
    let mut parts = Vec::new();
    let class = if state.rounds().completed == 0 && verdicts.iter().all(|s| *s == Status::Unknown) {
        parts.push(format!(
            "First round in progress: {domains} domain{} to check",
            plural(domains)
        ));
        "warn"
    } else if needing > 0 {
        parts.push(format!(
            "{needing} of {domains} domain{} need{} attention",
            plural(domains),
            if needing == 1 { "s" } else { "" }
        ));
        "bad"
    } else {
        parts.push(format!("All {domains} domain{} correct", plural(domains)));
        if down > 0 { "warn" } else { "ok" }
    };
    if down > 0 {
        parts.push(format!(
            "{down} of {} resolver{} down",
            configured.len(),
            plural(configured.len())
        ));
    } else if configured.iter().all(|r| r.up.is_some()) {
        parts.push(format!(
            "{} resolver{} working",
            configured.len(),
            plural(configured.len())
        ));
    }
    match state.rounds().last_finished {
        Some(at) => parts.push(format!("last round finished {}", when(at, overview.now))),
        None if state.rounds().completed == 0 && class != "warn" => {
            parts.push("first round in progress".to_string());
        }
        None => {}
    }
    (class, parts.join(" · "))
}

/// The shard, the records, when the config was loaded, the latest round, and the switch that
/// reloads the page.
fn meta_line(
    html: &mut String,
    state: &State,
    overview: &Overview<'_>,
    domains: usize,
    query: &PageQuery,
) {
    let (shard, domains_in_force) = overview.shard;
    html.push_str("<p class=\"meta\">");
    if !shard.is_whole() {
        let _ = write!(
            html,
            "<span id=\"shard\">shard {shard}: this replica checks {domains} of the \
             {domains_in_force} domains</span> · ",
        );
    }
    let _ = write!(
        html,
        "{} record{} · config loaded {}",
        state.records().len(),
        plural(state.records().len()),
        esc(&when(overview.loaded_at, overview.now)),
    );
    if let Some(seconds) = state.rounds().last_duration {
        let _ = write!(
            html,
            " · round {} took {seconds:.1} s",
            state.rounds().completed
        );
    }
    let switched = PageQuery {
        refresh: !query.refresh,
        ..query.clone()
    };
    if query.refresh {
        let _ = write!(
            html,
            " · this page reloads every {} s (<a href=\"{}\">stop</a>)",
            super::REFRESH_SECONDS,
            esc(&switched.url(query.page))
        );
    } else {
        let _ = write!(
            html,
            " · <a href=\"{}\">reload this page every {} s</a>",
            esc(&switched.url(query.page)),
            super::REFRESH_SECONDS
        );
    }
    html.push_str("</p>");
}

/// The id of a domain's card on the landing page.
fn anchor(domain: &str) -> String {
    format!("d-{domain}")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The configured resolvers, with their state, why their latest lookups failed, queries and
/// query time; then the domains' own nameservers in one line, naming those not working.
fn resolver_panel(html: &mut String, state: &State, overview: &Overview<'_>) {
    let (configured, nameservers) = (&overview.resolvers, &overview.nameservers);
    html.push_str(
        "<h2>Resolvers</h2><table id=\"resolvers\"><colgroup><col class=\"name\"><col class=\"num\">\
         <col><col class=\"num\"><col class=\"num\"></colgroup><thead><tr><th>Resolver</th>\
         <th>State</th><th>Latest failures</th><th>Queries</th><th>Mean query time</th></tr>\
         </thead><tbody>",
    );
    for row in configured {
        let index = state.resolvers().iter().position(|r| r.name == row.name);
        let failures = index.map(|i| {
            failure_reasons(
                state
                    .records()
                    .iter()
                    .filter_map(|r| r.views.get(i))
                    .filter_map(|v| v.latest.failure()),
            )
        });
        resolver_row(html, row, failures.as_deref(), state.records().len());
    }
    html.push_str("</tbody></table>");
    if nameservers.is_empty() {
        return;
    }
    let down: Vec<&str> = nameservers
        .iter()
        .filter(|r| r.up == Some(false))
        .map(|r| r.name.as_str())
        .collect();
    let working = nameservers.iter().filter(|r| r.up == Some(true)).count();
    let _ = write!(
        html,
        "<p class=\"meta\" id=\"nameservers\">The domains' own nameservers: {} asked",
        nameservers.len(),
    );
    if working > 0 {
        let _ = write!(html, ", {working} working");
    }
    if !down.is_empty() {
        let mut reasons: HashMap<&str, Vec<FailureReason>> = HashMap::new();
        for record in state.records() {
            for (name, view) in &record.nameservers {
                if let Some(reason) = view.latest.failure()
                    && down.contains(&name.as_str())
                {
                    reasons.entry(name).or_default().push(reason);
                }
            }
        }
        let named: Vec<String> = down
            .iter()
            .take(NAMESERVERS_NAMED)
            .map(|name| {
                let host = name.trim_start_matches("auth:");
                match reasons.get(name) {
                    Some(failed) => format!(
                        "{host} ({})",
                        failure_reasons(failed.iter().copied()).join(", ")
                    ),
                    None => host.to_string(),
                }
            })
            .collect();
        let more = down.len().saturating_sub(NAMESERVERS_NAMED);
        let _ = write!(
            html,
            ", <span class=\"bad\">{} not: {}{}</span>. Their failures are the domains' DNS, \
             not your resolvers': each domain they serve says so below.",
            down.len(),
            esc(&named.join(", ")),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    html.push_str("</p>");
}

/// One configured resolver's row.
fn resolver_row(html: &mut String, row: &ResolverRow, failures: Option<&[String]>, records: usize) {
    let (word, class) = match row.up {
        Some(true) => ("working", "ok"),
        Some(false) => ("down", "bad"),
        None => ("not judged yet", "muted"),
    };
    let failures = match failures {
        Some(failures) if !failures.is_empty() => format!(
            "{} (of {records} record{})",
            failures.join(", "),
            plural(records)
        ),
        _ => "none".to_string(),
    };
    let time = row
        .mean_query_seconds
        .map(|s| format!("{:.1} ms", s * 1000.0))
        .unwrap_or_else(|| "–".to_string());
    let _ = write!(
        html,
        "<tr data-resolver=\"{}\"><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td>\
         <td>{}</td><td>{time}</td></tr>",
        esc(&row.name),
        esc(&row.name),
        esc(&failures),
        row.queries,
    );
}

/// `timeout on 40, servfail on 2`: how many lookups failed for each reason, most first.
fn failure_reasons(failures: impl Iterator<Item = FailureReason>) -> Vec<String> {
    let mut counts: Vec<(FailureReason, usize)> = Vec::new();
    for reason in failures {
        match counts.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => counts.push((reason, 1)),
        }
    }
    counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    counts
        .into_iter()
        .map(|(reason, n)| format!("{} on {n}", reason.as_str()))
        .collect()
}

/// The domain filter and the "problems only" switch, as a form that works without script.
fn filter_form(html: &mut String, query: &PageQuery) {
    let _ = write!(
        html,
        "<form method=\"get\" action=\"/\" role=\"search\"><input type=\"search\" name=\"q\" \
         value=\"{}\" placeholder=\"Domain contains…\" aria-label=\"Domain contains\">\
         <label><input type=\"checkbox\" name=\"problems\" value=\"1\"{}> Problems only</label>",
        esc(&query.filter),
        if query.problems_only { " checked" } else { "" },
    );
    if !query.refresh {
        html.push_str("<input type=\"hidden\" name=\"refresh\" value=\"0\">");
    }
    html.push_str("<button type=\"submit\">Show</button>");
    if query.filter.is_empty() && !query.problems_only {
        html.push_str("</form>");
    } else {
        let all = PageQuery {
            refresh: query.refresh,
            ..PageQuery::default()
        };
        let _ = write!(html, "<a href=\"{}\">Show all</a></form>", esc(&all.url(1)));
    }
}

/// A domain that needs attention: its SES state, each record not correct with its problems,
/// the fix and the collapsed detail, and the correct ones named in one line.
fn card(
    html: &mut String,
    domain: &DomainReport,
    last_check: Option<f64>,
    now: f64,
    down: &[&str],
) {
    let (class, word) = match domain.status {
        Status::Problem => ("problem", "bad"),
        _ => ("unknown", "warn"),
    };
    let not_correct = domain
        .records
        .iter()
        .filter(|r| r.status != Status::Correct)
        .count();
    let summary = if not_correct > 0 {
        format!(
            "{not_correct} of {} record{} need{} attention",
            domain.records_checked,
            plural(domain.records_checked),
            if not_correct == 1 { "s" } else { "" }
        )
    } else {
        "SES reports trouble".to_string()
    };
    let _ = write!(
        html,
        "<article class=\"domain {class}\" data-status=\"{class}\" id=\"{}\"><h3><a href=\"{}\">{}</a> \
         <span class=\"{word}\">{summary}</span></h3>",
        esc(&anchor(&domain.domain)),
        esc(&domain_path(&domain.domain)),
        esc(&domain.domain),
    );
    if let Some(at) = last_check {
        let _ = write!(
            html,
            "<div class=\"meta\">all records last checked {}</div>",
            ago(now - at)
        );
    }
    ses_lines(html, domain);
    receivers(html, domain, false);
    for r in domain
        .records
        .iter()
        .filter(|r| r.status != Status::Correct)
    {
        record(html, r, Some(down));
    }
    let correct: Vec<&str> = domain
        .records
        .iter()
        .filter(|r| r.status == Status::Correct)
        .map(|r| r.selector.as_str())
        .collect();
    if !correct.is_empty() {
        let _ = write!(
            html,
            "<p class=\"muted\">Correct: {}</p>",
            esc(&correct.join(", "))
        );
    }
    html.push_str("</article>");
}

/// What SES says of the domain's identity, per source, with the SES problems.
pub(super) fn ses_lines(html: &mut String, domain: &DomainReport) {
    for ses in &domain.ses {
        let key = ses
            .key_length
            .map(|bits| format!(", key {bits} bits"))
            .unwrap_or_default();
        let _ = write!(
            html,
            "<div class=\"record\"><h4>Amazon SES identity ({} · {})</h4><div class=\"meta\">\
             DKIM status {}, signing {}{key}</div>",
            esc(&ses.source),
            esc(&ses.region),
            esc(&ses.status.unwrap_or("unknown").to_ascii_uppercase()),
            if ses.signing_enabled {
                "enabled"
            } else {
                "disabled"
            },
        );
        problem_list(html, &ses.problems);
        html.push_str("</div>");
    }
}
