//! The status pages, for a person who was just paged: the landing page (`/`) says what is
//! broken and what to paste, broken domains first; a page per domain (`/domain/{name}`) says
//! everything known about one. Plain HTML and CSS, readable without JavaScript, light or dark
//! as the reader's system is; every value from DNS, SES or the config is escaped.

mod domain;
mod landing;

use std::fmt::Write as _;

pub use domain::{domain_page, no_such_domain};
pub use landing::landing_page;

use super::{ProblemReport, RecordReport, Status, Tone};
use crate::records::shard::Shard;

/// Seconds between reloads of a page left open (off with `?refresh=0`).
pub const REFRESH_SECONDS: u32 = 60;

/// Domains listed on one landing page; the others are on the next pages.
pub const DOMAINS_PER_PAGE: usize = 100;

/// What the pages say beside the records: the exporter's own state.
pub struct Overview<'a> {
    /// Where metrics are served (`--web.telemetry-path`).
    pub telemetry_path: &'a str,
    /// Unix time the page is made at.
    pub now: f64,
    /// The configured resolvers, in config order.
    pub resolvers: Vec<ResolverRow>,
    /// The domains' own nameservers (`auth:`), by name.
    pub nameservers: Vec<ResolverRow>,
    /// Why the latest config reload failed, while the config loaded before it stays in force.
    pub reload_error: Option<String>,
    /// Unix time of the latest successful config load.
    pub loaded_at: f64,
    /// This replica's share of the domains (`--shard`), and how many domains are in force
    /// over every shard.
    pub shard: (Shard, usize),
    /// What receivers reported (the latest DMARC count) and the window, when `dmarc:` is
    /// configured.
    pub receivers: Option<(
        std::sync::Arc<crate::dmarc::tally::Tally>,
        std::time::Duration,
    )>,
}

impl Overview<'_> {
    /// The latest DMARC count and its window, for [`crate::report::Report::with_receivers`].
    pub fn receivers(&self) -> Option<(&crate::dmarc::tally::Tally, std::time::Duration)> {
        self.receivers
            .as_ref()
            .map(|(tally, window)| (&**tally, *window))
    }
}

/// One resolver in the resolver panel.
pub struct ResolverRow {
    /// Its config name, or `auth:{host}` for a domain's nameserver.
    pub name: String,
    /// Whether it worked in its latest round; `None` before one was judged.
    pub up: Option<bool>,
    /// Queries sent to it.
    pub queries: u64,
    /// The mean time a query took, timeouts included.
    pub mean_query_seconds: Option<f64>,
}

/// What the landing page's URL asks for: `?q=TEXT&problems=1&page=N&refresh=0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// Only domains whose name contains this, lower case (`q`).
    pub filter: String,
    /// Only domains that need attention (`problems`).
    pub problems_only: bool,
    /// Which page of [`DOMAINS_PER_PAGE`] domains, from 1 (`page`).
    pub page: usize,
    /// Whether the page reloads itself every [`REFRESH_SECONDS`] (`refresh=0` turns it off).
    pub refresh: bool,
}

impl Default for PageQuery {
    fn default() -> Self {
        PageQuery {
            filter: String::new(),
            problems_only: false,
            page: 1,
            refresh: true,
        }
    }
}

impl PageQuery {
    /// Reads the query string of a request. A page is for people: parameters it does not
    /// know and values it cannot read are ignored, not refused.
    pub fn parse(query: Option<&str>) -> PageQuery {
        let mut parsed = PageQuery::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.trim();
            let yes = !matches!(value, "0" | "false" | "off" | "no");
            match &*key {
                "q" => parsed.filter = value.to_ascii_lowercase(),
                "problems" => parsed.problems_only = yes,
                "page" => parsed.page = value.parse().ok().filter(|p| *p > 0).unwrap_or(1),
                "refresh" => parsed.refresh = yes,
                _ => {}
            }
        }
        parsed
    }

    /// The landing page's URL for this query on `page`.
    pub fn url(&self, page: usize) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        if !self.filter.is_empty() {
            url.append_pair("q", &self.filter);
        }
        if self.problems_only {
            url.append_pair("problems", "1");
        }
        if page > 1 {
            url.append_pair("page", &page.to_string());
        }
        if !self.refresh {
            url.append_pair("refresh", "0");
        }
        let query = url.finish();
        if query.is_empty() {
            "/".to_string()
        } else {
            format!("/?{query}")
        }
    }
}

/// Escapes text for HTML, in element content and in quoted attributes.
pub fn esc(text: &str) -> String {
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

/// The path of a domain's page: `/domain/{name}`, the name percent-encoded but for the
/// characters of host names.
pub fn domain_path(domain: &str) -> String {
    const ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'-')
        .remove(b'_');
    format!(
        "/domain/{}",
        percent_encoding::utf8_percent_encode(domain, ESCAPED)
    )
}

/// The colours, light and dark, and a layout that wraps long names instead of scrolling
/// sideways.
const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;\
--bad:#c21c2c;--bad-bg:#ffebe9;--ok:#1a7f37;--ok-bg:#dafbe1;--warn:#8a5a00;--warn-bg:#fff8c5;\
--code:#f3f5f7}\
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;\
--line:#3d444d;--bad:#ff8b82;--bad-bg:#3c1618;--ok:#56d364;--ok-bg:#12261e;--warn:#e3b341;\
--warn-bg:#2e2610;--code:#161b22}}\
*{box-sizing:border-box}\
body{margin:0 auto;max-width:72rem;padding:.5rem 1.25rem 2rem;background:var(--bg);\
color:var(--fg);font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;\
overflow-wrap:anywhere}\
a{color:inherit}\
nav{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;color:var(--muted)}\
nav strong{color:var(--fg);font-size:1.1rem}\
h1{font-size:1.35rem;margin:.6rem 0}h2{font-size:1.15rem;margin:1.4rem 0 .5rem}\
h3{font-size:1.05rem;margin:0 0 .3rem}h4{font-size:.95rem;margin:0 0 .2rem}\
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;background:var(--code);\
border-radius:4px;padding:0 .2em}\
pre{padding:.4rem .6rem;margin:.3rem 0;white-space:pre-wrap}\
.verdict{font-size:1.15rem;font-weight:600;padding:.6rem .9rem;border-radius:6px;margin:.5rem 0}\
.bad{color:var(--bad)}.ok{color:var(--ok)}.warn{color:var(--warn)}\
.verdict.bad{background:var(--bad-bg)}.verdict.ok{background:var(--ok-bg)}\
.verdict.warn{background:var(--warn-bg)}\
.muted,.meta{color:var(--muted)}.meta{margin:.2rem 0}\
.domain{border:1px solid var(--line);border-left:5px solid var(--bad);border-radius:6px;\
padding:.6rem .9rem;margin:.7rem 0}\
.domain.unknown{border-left-color:var(--warn)}.domain.correct{border-left-color:var(--ok)}\
.record{margin:.6rem 0 .2rem}.record+.record{border-top:1px dashed var(--line);padding-top:.6rem}\
.problems{margin:.3rem 0;padding-left:1.2rem}.problems li{margin:.3rem 0}\
.problems b{color:var(--bad)}.fix{margin:.15rem 0}\
.paste{border-left:3px solid var(--ok);padding-left:.6rem;margin:.3rem 0}\
details{margin:.3rem 0}summary{cursor:pointer;color:var(--muted)}\
table{border-collapse:collapse;width:100%;table-layout:fixed;margin:.3rem 0}\
th,td{border-bottom:1px solid var(--line);padding:.25rem .5rem;text-align:left;\
vertical-align:top}\
th{font-weight:600;color:var(--muted)}col.name{width:13rem}col.num{width:7rem}\
tr.t-wrong td:last-child,tr.t-failed td:last-child{color:var(--bad)}\
.healthy{columns:3 16rem;column-gap:2rem;padding-left:1.2rem;margin:.3rem 0}\
.healthy li{break-inside:avoid}\
form{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;margin:.8rem 0}\
input[type=search]{min-width:16rem;padding:.3rem .5rem;font:inherit}\
button{font:inherit;padding:.25rem .8rem}\
.pager{display:flex;gap:1rem;margin:1rem 0}";

/// The document head and the opening of the body; `refresh` reloads the page.
fn open(html: &mut String, title: &str, refresh: bool) {
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    );
    if refresh {
        let _ = write!(
            html,
            "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">"
        );
    }
    let _ = write!(
        html,
        "<title>{}</title><style>{STYLE}</style></head><body>",
        esc(title)
    );
}

/// The links at the top of every page.
fn nav(html: &mut String, overview: &Overview<'_>, home: &str) {
    let _ = write!(
        html,
        "<nav><strong><a href=\"{}\">DKIM Exporter</a></strong>\
         <a href=\"{}\">Metrics</a><a href=\"/-/healthy\">Health</a>\
         <a href=\"/-/ready\">Readiness</a><span>version {}</span></nav>",
        esc(home),
        esc(overview.telemetry_path),
        crate::VERSION,
    );
}

/// A unix time as people read it: `14:02:11 UTC` today, with the date otherwise, and how
/// long ago.
fn when(at: f64, now: f64) -> String {
    let stamp = crate::logging::rfc3339_at(at);
    let today = crate::logging::rfc3339_at(now);
    let (date, rest) = stamp.split_at(10);
    let time = rest.get(1..9).unwrap_or("");
    let shown = if today.starts_with(date) {
        format!("{time} UTC")
    } else {
        format!("{date} {time} UTC")
    };
    format!("{shown}, {}", ago(now - at))
}

/// `40 s ago`, `3 min ago`, `2 h ago`, `4 days ago`.
fn ago(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        7200..172_800 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// One record: its name and verdict, what it should hold, its problems with the fix and the
/// record to paste, and what each resolver returned. On the landing page that detail is
/// collapsed and leaves out the resolvers that are `down` (the resolver panel says so once);
/// on the domain's page it is open and complete.
fn record(html: &mut String, record: &RecordReport, down: Option<&[&str]>) {
    let (word, class) = record_word(record);
    let _ = write!(
        html,
        "<div class=\"record\"><h4><code>{}</code> <span class=\"{class}\">{word}</span></h4>\
         <div class=\"meta\">expected {}",
        esc(&record.name),
        esc(&record.expected()),
    );
    if let Some(bits) = record.key_bits {
        let _ = write!(html, " · key {bits} bits");
        for tag in record.key_tags.iter().filter(|t| !t.starts_with("k=rsa")) {
            let _ = write!(html, " {tag}");
        }
        if let Some(fingerprint) = &record.key_fingerprint {
            let _ = write!(html, " <code>{}</code>", esc(fingerprint));
        }
        match (&record.key_replaced, &record.key_first_seen) {
            (Some(old), Some(at)) => {
                let _ = write!(
                    html,
                    " · <span class=\"warn\">key changed {}</span> (it replaced <code>{}</code>)",
                    esc(at),
                    esc(old)
                );
            }
            (None, Some(at)) => {
                let _ = write!(html, " · seen since {}", esc(at));
            }
            _ => {}
        }
    }
    if let Some(at) = &record.signature_expiry {
        let _ = write!(html, " · DNSSEC signatures until {}", esc(at));
    }
    if let Some(source) = &record.from_ses {
        let _ = write!(html, " · from SES {}", esc(source));
    }
    if record.from_dmarc {
        html.push_str(" · seen in DMARC reports, not configured");
    }
    if !record.key_chain.is_empty() {
        let _ = write!(html, " · chain: {}", esc(&record.key_chain.join(" → ")));
    }
    if record.inactive_key {
        html.push_str(" · inactive key of a rotating pair (no key until rotation)");
    }
    html.push_str("</div>");
    problem_list(html, &record.problems);
    match down {
        Some(down) => {
            let shown = record
                .resolvers
                .iter()
                .filter(|r| !down.contains(&r.resolver.as_str()))
                .count();
            let _ = write!(
                html,
                "<details><summary>What each resolver returned ({shown})</summary>"
            );
            answers(html, record, down);
            let hidden: Vec<&str> = record
                .resolvers
                .iter()
                .map(|r| r.resolver.as_str())
                .filter(|r| down.contains(r))
                .collect();
            if !hidden.is_empty() {
                let _ = write!(
                    html,
                    "<p class=\"muted\">Not shown: {}, down (see Resolvers).</p>",
                    esc(&hidden.join(", "))
                );
            }
            html.push_str("</details>");
        }
        None => answers(html, record, &[]),
    }
    html.push_str("</div>");
}

/// A record's verdict in a word, and its colour class.
fn record_word(record: &RecordReport) -> (&'static str, &'static str) {
    match record.status {
        Status::Correct => ("correct", "ok"),
        Status::Problem => ("problem", "bad"),
        Status::Unknown
            if record
                .resolvers
                .iter()
                .all(|r| r.record_type.is_none() && r.failure.is_none()) =>
        {
            ("not checked yet", "warn")
        }
        Status::Unknown => ("unknown: no resolver answered", "warn"),
    }
}

/// The table of what each resolver but those `left_out` returned for `record`.
fn answers(html: &mut String, record: &RecordReport, left_out: &[&str]) {
    html.push_str(
        "<table><colgroup><col class=\"name\"><col></colgroup>\
         <thead><tr><th>Resolver</th><th>Returned</th></tr></thead><tbody>",
    );
    for resolver in &record.resolvers {
        if left_out.contains(&resolver.resolver.as_str()) {
            continue;
        }
        let (said, tone) = resolver.said();
        let class = match tone {
            Tone::Correct => "t-correct",
            Tone::Wrong => "t-wrong",
            Tone::Failed => "t-failed",
            Tone::NotAsked => "t-not-asked",
        };
        let _ = write!(
            html,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td></tr>",
            esc(&resolver.resolver),
            esc(&said)
        );
    }
    html.push_str("</tbody></table>");
}

/// The list of `problems`, an item each: its name, what was seen, the fix, and the record to
/// paste. Nothing when there is none.
fn problem_list(html: &mut String, problems: &[ProblemReport]) {
    if problems.is_empty() {
        return;
    }
    html.push_str("<ul class=\"problems\">");
    for problem in problems {
        let _ = write!(
            html,
            "<li><b>{}</b>: {}<div class=\"fix\">Fix: {}</div>",
            esc(problem.problem),
            esc(&problem.detail),
            esc(problem.fix)
        );
        if let Some(paste) = &problem.paste {
            let _ = write!(
                html,
                "<div class=\"paste\">In your DNS host's form: name <code>{}</code>, \
                 type {}, value <code>{}</code>. In a zone file:<pre>{}</pre>{}</div>",
                esc(&paste.host_form_name),
                paste.record_type,
                esc(&paste.value),
                esc(&paste.zone_file),
                esc(&paste.place()),
            );
        }
        html.push_str("</li>");
    }
    html.push_str("</ul>");
}

/// What receivers reported about the domain: one line on the landing page; with `full` (its
/// own page) each selector's signatures by result and reporter, and the selectors nobody
/// configured.
fn receivers(html: &mut String, domain: &crate::report::DomainReport, full: bool) {
    let Some(r) = &domain.receivers else {
        return;
    };
    let _ = write!(
        html,
        "<div class=\"record receivers\"><h4>What receivers reported (last {})</h4>\
         <div class=\"meta\">{}",
        esc(&r.window),
        esc(&r.summary()),
    );
    if r.spf_passed_dkim_failed > 0 {
        let _ = write!(
            html,
            " · {} passed SPF but not DKIM",
            r.spf_passed_dkim_failed
        );
    }
    let _ = write!(html, " · newest report ends {}</div>", esc(&r.last_report));
    if full {
        html.push_str("<ul class=\"selectors\">");
        for s in &r.selectors {
            let _ = write!(
                html,
                "<li><code>{}</code>: {}",
                esc(&s.selector),
                esc(&s.summary())
            );
            if !s.reporters.is_empty() {
                let _ = write!(
                    html,
                    " <span class=\"muted\">· {}</span>",
                    esc(&s.reporters)
                );
            }
            html.push_str("</li>");
        }
        html.push_str("</ul><p class=\"muted\">Reporters: ");
        let reporters: Vec<String> = r
            .reporters
            .iter()
            .map(|p| format!("{} ({} messages)", p.org, p.messages))
            .collect();
        html.push_str(&esc(&reporters.join(", ")));
        html.push_str("</p>");
    }
    if !r.not_configured.is_empty() {
        let _ = write!(
            html,
            "<p>Seen signing, not configured: <code>{}</code> (checked as records)</p>",
            esc(&r.not_configured.join(", "))
        );
    }
    html.push_str("</div>");
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

    #[test]
    fn queries_are_read_leniently_and_written_back() {
        let query = PageQuery::parse(Some("q=Shop%20&problems=1&page=3&refresh=0&x=1"));
        assert_eq!(
            query,
            PageQuery {
                filter: "shop".into(),
                problems_only: true,
                page: 3,
                refresh: false,
            }
        );
        assert_eq!(query.url(4), "/?q=shop&problems=1&page=4&refresh=0");
        assert_eq!(PageQuery::parse(Some("page=0")).page, 1);
        assert_eq!(PageQuery::parse(Some("page=x")).url(1), "/");
        assert_eq!(PageQuery::parse(None), PageQuery::default());
    }

    #[test]
    fn domain_paths_encode_what_is_not_a_host_name() {
        assert_eq!(domain_path("mail.example.com"), "/domain/mail.example.com");
        assert_eq!(domain_path("a<b>/c"), "/domain/a%3Cb%3E%2Fc");
    }

    #[test]
    fn times_read_as_people_say_them() {
        let now = 1_795_996_800.0; // 2026-11-30 00:00:00 UTC
        assert_eq!(
            when(now + 3600.0 - 40.0, now + 3600.0),
            "00:59:20 UTC, 40 s ago"
        );
        assert_eq!(
            when(now - 3600.0, now + 60.0),
            "2026-11-29 23:00:00 UTC, 61 min ago"
        );
        assert_eq!(ago(3.0 * 86_400.0), "3 days ago");
    }
}
