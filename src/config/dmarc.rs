//! `dmarc:`: where DMARC aggregate reports are read from, and how they are judged.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::scalar::{
    ConfigDuration, EndpointUrl, ProfileName, Region, RoleArn, ScalarText, SourceName,
    format_duration,
};
use super::validate::{Invalid, Seg, fail, read_ca_file, refresh};
use Seg::{Index, Key};

/// Reports whose period ended within this long count, when `window` is omitted.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// `fail_share` when omitted.
pub const DEFAULT_FAIL_SHARE: f64 = 0.2;
/// `min_messages` when omitted.
pub const DEFAULT_MIN_MESSAGES: u64 = 50;
/// `max_selectors_per_domain` when omitted.
pub const DEFAULT_MAX_SELECTORS: usize = 20;
/// The most `max_selectors_per_domain` may be: each selector is a record checked on every
/// resolver.
pub const MAX_SELECTORS_LIMIT: usize = 1000;
/// How often a source is read again when `refresh` is omitted.
pub const DEFAULT_DMARC_REFRESH: Duration = Duration::from_secs(5 * 60);

/// `dmarc:`: the sources of DMARC aggregate reports and how they are judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dmarc {
    /// Reports whose period ended within this long count.
    pub window: Duration,
    /// `failing_at_receivers` holds when more than this share of a selector's signatures failed…
    pub fail_share: Share,
    /// …over at least this many signatures.
    pub min_messages: u64,
    /// Selectors per domain with series of their own (and checked as records); the rest count
    /// as `_other`.
    pub max_selectors_per_domain: usize,
    /// Where reports are read from, each with its own name.
    pub sources: Vec<DmarcSource>,
}

impl Default for Dmarc {
    /// Every default, and no source.
    fn default() -> Self {
        Dmarc {
            window: DEFAULT_WINDOW,
            fail_share: Share(DEFAULT_FAIL_SHARE),
            min_messages: DEFAULT_MIN_MESSAGES,
            max_selectors_per_domain: DEFAULT_MAX_SELECTORS,
            sources: Vec::new(),
        }
    }
}

/// A share strictly between 0 and 1 (never NaN, so it compares as equal to itself).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Share(pub f64);

impl Eq for Share {}

/// One `dmarc.sources[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcSource {
    /// Lower-case name, the `source` label.
    pub name: String,
    /// How often the source is read again.
    pub refresh: Duration,
    /// When set, a message counts only when this server's `Authentication-Results` header says
    /// `dkim=pass` for the domain of its From address (lower case).
    pub authserv_id: Option<String>,
    /// Where the reports are.
    pub kind: SourceKind,
}

/// Where a source's reports are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A mailbox, read only.
    Imap(ImapSource),
    /// The objects under a prefix of an S3 bucket.
    S3(S3Source),
    /// The files of a directory (not its subdirectories), read only.
    Directory(PathBuf),
}

impl SourceKind {
    /// What it reads, for logs: `imap`, `s3` or `directory`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::Imap(_) => "imap",
            SourceKind::S3(_) => "s3",
            SourceKind::Directory(_) => "directory",
        }
    }
}

/// A mailbox that receives reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapSource {
    /// The server's host name or address.
    pub host: String,
    /// Its port: 993 with implicit TLS, 143 otherwise, when omitted.
    pub port: u16,
    /// How the connection is protected.
    pub tls: ImapTls,
    /// An extra trust root besides the Mozilla roots.
    pub tls_ca_file: Option<PathBuf>,
    /// The login.
    pub username: String,
    /// Where the password is read from, at each connection.
    pub password: Secret,
    /// The folder read (`INBOX` when omitted).
    pub folder: String,
}

/// `imap.tls`: how an IMAP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapTls {
    /// TLS from the first byte (port 993).
    Tls,
    /// Plain, then STARTTLS before the login (port 143); never a plain login.
    Starttls,
    /// No TLS: for a server on a loopback address only.
    None,
}

/// Where a password is: never in the config file itself.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// In this file (a trailing newline is not part of it).
    File(PathBuf),
    /// In this environment variable.
    Env(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::File(path) => write!(f, "password_file {}", path.display()),
            Secret::Env(name) => write!(f, "password_env {name}"),
        }
    }
}

impl Secret {
    /// Reads the password now.
    pub fn read(&self) -> Result<String, String> {
        let text = match self {
            Secret::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read password_file {}: {e}", path.display()))?,
            Secret::Env(name) => {
                std::env::var(name).map_err(|e| format!("cannot read password_env {name}: {e}"))?
            }
        };
        let password = text.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            return Err(format!("{self:?} is empty"));
        }
        Ok(password)
    }
}

/// The objects under a prefix of a bucket (an SES receipt rule's `S3Action`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Source {
    /// The bucket.
    pub bucket: String,
    /// The key prefix (empty for the whole bucket).
    pub prefix: String,
    /// The bucket's region.
    pub region: String,
    /// The AWS shared-config profile; `None` for the standard credential chain.
    pub profile: Option<String>,
    /// A role to assume with the credentials found.
    pub role_arn: Option<String>,
    /// Another endpoint (a VPC endpoint, MinIO, a test server).
    pub endpoint: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDmarc {
    window: Option<ConfigDuration>,
    fail_share: Option<f64>,
    min_messages: Option<u64>,
    max_selectors_per_domain: Option<usize>,
    #[serde(default)]
    sources: Vec<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: SourceName,
    refresh: Option<ConfigDuration>,
    authserv_id: Option<ScalarText>,
    imap: Option<RawImap>,
    s3: Option<RawS3>,
    directory: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImap {
    host: ScalarText,
    port: Option<u16>,
    tls: Option<ImapTls>,
    tls_ca_file: Option<PathBuf>,
    username: ScalarText,
    password_file: Option<PathBuf>,
    password_env: Option<ScalarText>,
    /// Refused with a message of its own rather than as an unknown field.
    password: Option<IgnoredAny>,
    folder: Option<ScalarText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawS3 {
    bucket: ScalarText,
    prefix: Option<ScalarText>,
    region: Region,
    profile: Option<ProfileName>,
    role_arn: Option<RoleArn>,
    endpoint: Option<EndpointUrl>,
}

/// `dmarc:`, checked, with its defaults.
pub(super) fn dmarc(raw: Option<RawDmarc>) -> Result<Option<Dmarc>, Invalid> {
    let Some(raw) = raw else { return Ok(None) };
    let at = |field| vec![Key("dmarc"), Key(field)];
    let window = raw.window.map_or(DEFAULT_WINDOW, |d| d.0);
    if window < Duration::from_secs(3600) {
        return fail(
            at("window"),
            format!(
                "window must be at least 1h (reports cover a day), got {}",
                format_duration(window)
            ),
        );
    }
    let fail_share = raw.fail_share.unwrap_or(DEFAULT_FAIL_SHARE);
    if !(fail_share > 0.0 && fail_share < 1.0) {
        return fail(
            at("fail_share"),
            format!("fail_share must be over 0 and under 1, like 0.2; got {fail_share}"),
        );
    }
    let min_messages = raw.min_messages.unwrap_or(DEFAULT_MIN_MESSAGES);
    if min_messages == 0 {
        return fail(at("min_messages"), "min_messages must be at least 1");
    }
    let max_selectors = raw
        .max_selectors_per_domain
        .unwrap_or(DEFAULT_MAX_SELECTORS);
    if !(1..=MAX_SELECTORS_LIMIT).contains(&max_selectors) {
        return fail(
            at("max_selectors_per_domain"),
            format!(
                "max_selectors_per_domain must be from 1 to {MAX_SELECTORS_LIMIT}, got {max_selectors}"
            ),
        );
    }
    if raw.sources.is_empty() {
        return fail(
            vec![Key("dmarc")],
            "dmarc needs at least one source under sources: (imap, s3 or directory)",
        );
    }
    let mut sources: Vec<DmarcSource> = Vec::with_capacity(raw.sources.len());
    for (i, source) in raw.sources.into_iter().enumerate() {
        if let Some(first) = sources.iter().position(|s| s.name == source.name.0) {
            return fail(
                vec![Key("dmarc"), Key("sources"), Index(i), Key("name")],
                format!(
                    "duplicate source name {:?} (also dmarc.sources[{first}])",
                    source.name.0
                ),
            );
        }
        sources.push(dmarc_source(source, i)?);
    }
    Ok(Some(Dmarc {
        window,
        fail_share: Share(fail_share),
        min_messages,
        max_selectors_per_domain: max_selectors,
        sources,
    }))
}

/// `dmarc.sources[i]`: exactly one of `imap`, `s3`, `directory`.
fn dmarc_source(raw: RawSource, i: usize) -> Result<DmarcSource, Invalid> {
    let at = |field| vec![Key("dmarc"), Key("sources"), Index(i), Key(field)];
    let refresh = refresh(raw.refresh, DEFAULT_DMARC_REFRESH, at("refresh"))?;
    let authserv_id = raw
        .authserv_id
        .map(|id| id.0.trim().to_ascii_lowercase())
        .filter(|id| !id.is_empty());
    let kind = match (raw.imap, raw.s3, raw.directory) {
        (Some(imap), None, None) => SourceKind::Imap(imap_source(imap, i)?),
        (None, Some(s3), None) => SourceKind::S3(S3Source {
            bucket: s3.bucket.0.trim().to_string(),
            prefix: s3.prefix.map(|p| p.0).unwrap_or_default(),
            region: s3.region.0,
            profile: s3.profile.map(|p| p.0),
            role_arn: s3.role_arn.map(|r| r.0),
            endpoint: s3.endpoint.map(|e| e.0),
        }),
        (None, None, Some(directory)) => SourceKind::Directory(directory),
        _ => {
            return fail(
                vec![Key("dmarc"), Key("sources"), Index(i)],
                "give exactly one of imap:, s3: or directory:",
            );
        }
    };
    if let SourceKind::S3(s3) = &kind
        && s3.bucket.is_empty()
    {
        return fail(at("s3"), "s3 needs a bucket");
    }
    Ok(DmarcSource {
        name: raw.name.0,
        refresh,
        authserv_id,
        kind,
    })
}

/// `dmarc.sources[i].imap`.
fn imap_source(raw: RawImap, i: usize) -> Result<ImapSource, Invalid> {
    let at = |field| {
        vec![
            Key("dmarc"),
            Key("sources"),
            Index(i),
            Key("imap"),
            Key(field),
        ]
    };
    if raw.password.is_some() {
        return fail(
            at("password"),
            "the password is never written in the config: use password_file (a file only the \
             exporter can read) or password_env (an environment variable)",
        );
    }
    let password = match (raw.password_file, raw.password_env) {
        (Some(path), None) => Secret::File(path),
        (None, Some(name)) => Secret::Env(name.0.trim().to_string()),
        (Some(_), Some(_)) => {
            return fail(
                at("password_env"),
                "give password_file or password_env, not both",
            );
        }
        (None, None) => {
            return fail(
                at("username"),
                "the login needs a password: give password_file or password_env",
            );
        }
    };
    let field = if matches!(password, Secret::File(_)) {
        "password_file"
    } else {
        "password_env"
    };
    if let Err(message) = password.read() {
        return fail(at(field), message);
    }
    let host = raw.host.0.trim().to_ascii_lowercase();
    if host.is_empty() {
        return fail(at("host"), "imap needs a host");
    }
    let tls = raw.tls.unwrap_or(ImapTls::Tls);
    if tls == ImapTls::None && !is_loopback(&host) {
        return fail(
            at("tls"),
            format!(
                "tls: none sends the password in the clear, so it is only for a server on a \
                 loopback address, not {host}: use tls or starttls"
            ),
        );
    }
    if let Some(path) = &raw.tls_ca_file {
        if tls == ImapTls::None {
            return fail(at("tls_ca_file"), "tls_ca_file needs tls: tls or starttls");
        }
        read_ca_file(path).or_else(|message| fail(at("tls_ca_file"), message))?;
    }
    let username = raw.username.0.trim().to_string();
    if username.is_empty() {
        return fail(at("username"), "imap needs a username");
    }
    Ok(ImapSource {
        port: raw
            .port
            .unwrap_or(if tls == ImapTls::Tls { 993 } else { 143 }),
        host,
        tls,
        tls_ca_file: raw.tls_ca_file,
        username,
        password,
        folder: raw
            .folder
            .map(|f| f.0.trim().to_string())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "INBOX".to_string()),
    })
}

/// Whether `host` is a loopback address (or `localhost`).
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn error(yaml: &str) -> String {
        parse(yaml, "t.yaml").unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_sources() {
        let dir = std::env::temp_dir().join(format!("dmarc-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let password = dir.join("password");
        std::fs::write(&password, "s3cret\n").unwrap();
        let yaml = format!(
            "dmarc:\n  sources:\n  - name: Rua\n    imap: {{host: 127.0.0.1, tls: none, username: u, \
             password_file: {}}}\n    authserv_id: MX.Example.com\n  - name: files\n    directory: /var/lib/dmarc\n",
            password.display()
        );
        let dmarc = parse(&yaml, "t.yaml").unwrap().config.dmarc.unwrap();
        assert_eq!(dmarc.window, super::DEFAULT_WINDOW);
        assert_eq!(dmarc.min_messages, 50);
        assert_eq!(dmarc.max_selectors_per_domain, 20);
        assert_eq!(dmarc.sources[0].name, "rua");
        assert_eq!(
            dmarc.sources[0].authserv_id.as_deref(),
            Some("mx.example.com")
        );
        let super::SourceKind::Imap(imap) = &dmarc.sources[0].kind else {
            panic!("not imap");
        };
        assert_eq!((imap.port, imap.folder.as_str()), (143, "INBOX"));
        assert_eq!(imap.password.read().unwrap(), "s3cret");
        assert!(!format!("{dmarc:?}").contains("s3cret"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refusals_say_where_and_what() {
        let cases = [
            (
                "dmarc:\n  sources:\n  - name: a\n    imap: {host: imap.example.com, username: u, password: x}\n",
                "t.yaml:4:59: dmarc.sources[0].imap.password: the password is never written",
            ),
            (
                "dmarc:\n  sources:\n  - name: a\n    imap: {host: imap.example.com, tls: none, username: u, password_env: PATH}\n",
                "dmarc.sources[0].imap.tls: tls: none sends the password in the clear",
            ),
            (
                "dmarc:\n  sources:\n  - name: a\n    imap: {host: h, username: u, password_env: DKIM_EXPORTER_NO_SUCH_VARIABLE}\n",
                "dmarc.sources[0].imap.password_env: cannot read password_env DKIM_EXPORTER_NO_SUCH_VARIABLE",
            ),
            (
                "dmarc:\n  fail_share: 1.5\n  sources: [{name: a, directory: /x}]\n",
                "t.yaml:2:15: dmarc.fail_share: fail_share must be over 0 and under 1",
            ),
            (
                "dmarc:\n  sources:\n  - {name: a, directory: /x}\n  - {name: A, directory: /y}\n",
                "dmarc.sources[1].name: duplicate source name \"a\" (also dmarc.sources[0])",
            ),
            (
                "dmarc:\n  sources:\n  - {name: a, directory: /x, s3: {bucket: b, region: us-east-1}}\n",
                "dmarc.sources[0]: give exactly one of imap:, s3: or directory:",
            ),
            (
                "dmarc:\n  window: 7d\n",
                "dmarc: dmarc needs at least one source",
            ),
            (
                "dmarc:\n  window: 10m\n  sources: [{name: a, directory: /x}]\n",
                "dmarc.window: window must be at least 1h",
            ),
            (
                "dmarc:\n  max_selectors_per_domain: 0\n  sources: [{name: a, directory: /x}]\n",
                "dmarc.max_selectors_per_domain: max_selectors_per_domain must be from 1 to 1000",
            ),
        ];
        for (yaml, want) in cases {
            let got = error(yaml);
            assert!(got.contains(want), "{yaml}\ngot:  {got}\nwant: {want}");
        }
    }
}
