//! The YAML config: parsing, defaults, validation and normalisation.
//!
//! Loading happens in two passes. Serde reads the file into raw structs, and the scalar types that
//! can be checked on their own (durations, names, addresses, providers, regions) refuse bad values
//! while serde still knows where they are, so their errors carry the exact line and column.
//! Checks that need more than one value (duplicates, fields that only make sense together) run on
//! the raw structs afterwards and name the offending value by its path; `locate` then finds that
//! path in the source to report its line and column too.
//!
//! What the file's `domains:` declare comes out as [`Records`], the same model every other
//! source of records produces; [`Config`] holds the settings alone.
//!
//! - `validate`: the raw structs as written, and the checks across values;
//! - `scalar`: values that check themselves (names, selectors, durations, addresses, providers);
//! - [`dmarc`]: the `dmarc:` section, where DMARC aggregate reports are read from;
//! - `locate`: the line and column of a value named by its path;
//! - [`request`]: the records one request (`check`, `/probe`) asks about, by the same rules.

pub mod dmarc;
mod locate;
mod pieces;
pub mod request;
mod scalar;
mod validate;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::records::Records;

pub use dmarc::{Dmarc, DmarcSource, ImapSource, ImapTls, S3Source, Secret, SourceKind};

pub use scalar::{
    Glob, check_record_name, expand_cname, format_duration, normalise_name, parse_duration,
    parse_endpoint, parse_selector,
};
use validate::{Invalid, RawConfig, RawDomain};

/// Checked when `interval` is omitted.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// One DNS query when `timeout` is omitted.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Politeness limit per resolver when `max_queries_per_second` is omitted.
pub const DEFAULT_MAX_QPS: u32 = 50;
/// The shortest interval accepted: faster would be rude to public resolvers.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// How often SES identities are listed again when `refresh` is omitted.
pub const DEFAULT_SES_REFRESH: Duration = Duration::from_secs(15 * 60);
/// SES API requests per second per source when `max_requests_per_second` is omitted: SES's
/// default quota for `GetEmailIdentity` is about one a second per account.
pub const DEFAULT_SES_REQUESTS_PER_SECOND: f64 = 1.0;

/// Resolvers used when the config names none.
pub const DEFAULT_RESOLVERS: [(&str, &str); 4] = [
    ("google", "8.8.8.8"),
    ("cloudflare", "1.1.1.1"),
    ("quad9", "9.9.9.9"),
    ("opendns", "208.67.222.222"),
];

/// A config file, loaded, validated and normalised: its settings, and the records its
/// `domains:` declare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Everything but the domains.
    pub config: Config,
    /// The domains and their records, in file order.
    pub records: Records,
}

/// The settings of a config: how, where and how often records are checked, and the sources
/// of more records. The file's own records are [`Loaded::records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How often every record is checked on every resolver.
    pub interval: Duration,
    /// How long one DNS query may take before it counts as a timeout.
    pub timeout: Duration,
    /// Whether each domain's own nameservers are asked as well.
    pub authoritative: bool,
    /// The resolvers every record is checked against, in config order.
    pub resolvers: Vec<ResolverConfig>,
    /// The Amazon SES accounts and regions whose domain identities are discovered.
    pub ses: Vec<SesSource>,
    /// How much of each record `/metrics` exports (`metrics.detail`).
    pub detail: Detail,
    /// Where DMARC aggregate reports are read from (`dmarc:`), when they are.
    pub dmarc: Option<Dmarc>,
}

/// `metrics.detail`: how much of each record `/metrics` exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detail {
    /// Every series, the per-resolver record series included.
    #[default]
    Full,
    /// Only the per-record series without a resolver label, and the domain, resolver, SES and
    /// exporter series: for very large lists, where per-resolver series would be millions.
    Summary,
}

/// One `ses:` entry: an AWS account and region whose domain identities, with their DKIM tokens
/// and SES's status, are discovered through the SESv2 API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesSource {
    /// Lower-case name, the `source` label.
    pub name: String,
    /// The SES region; decides the API endpoint and the DKIM domain the tokens point at.
    pub region: String,
    /// The AWS shared-config profile; `None` for the standard credential chain.
    pub profile: Option<String>,
    /// A role to assume with the credentials found.
    pub role_arn: Option<String>,
    /// Another API endpoint (a VPC endpoint, a test server).
    pub endpoint: Option<String>,
    /// How often identities are listed again.
    pub refresh: Duration,
    /// Domains discovered only when they match one of these (every domain when empty).
    pub include: Vec<Glob>,
    /// Domains never discovered.
    pub exclude: Vec<Glob>,
    /// The least time between two API requests of this source.
    pub request_interval: Duration,
}

impl SesSource {
    /// Whether the domain identity `domain` (lower case) is discovered, after `include` and
    /// `exclude`.
    pub fn wants(&self, domain: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| g.matches(domain)))
            && !self.exclude.iter().any(|g| g.matches(domain))
    }
}

/// One resolver to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// Lower-case name, used as the `resolver` label.
    pub name: String,
    /// Where queries go.
    pub address: SocketAddr,
    /// How queries travel.
    pub protocol: Protocol,
    /// Upper bound on queries per second sent to this resolver; 0 means no limit.
    pub max_queries_per_second: u32,
    /// For `tls` and `https`: whom to trust.
    pub tls: Option<TlsSettings>,
}

/// How a DNS-over-TLS or DNS-over-HTTPS resolver is authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The name (or IP address) the resolver's certificate must carry; also sent as the HTTP
    /// authority for DNS over HTTPS.
    pub name: String,
    /// Trust roots added to the Mozilla roots, read from `tls_ca_file` at load.
    pub extra_roots: Vec<pki_types::CertificateDer<'static>>,
}

/// The transport used to reach a resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Plain DNS over UDP, retried over TCP when the answer is truncated.
    Udp,
    /// Plain DNS over TCP.
    Tcp,
    /// DNS over TLS (RFC 7858).
    Tls,
    /// DNS over HTTPS (RFC 8484).
    Https,
}

impl Protocol {
    /// The lower-case name used in the config and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::Https => "https",
        }
    }

    pub(crate) fn default_port(self) -> u16 {
        match self {
            Protocol::Udp | Protocol::Tcp => 53,
            Protocol::Tls => 853,
            Protocol::Https => 443,
        }
    }
}

impl Default for Config {
    /// What an empty file means: every default, the public resolvers.
    fn default() -> Self {
        Config {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            authoritative: true,
            resolvers: validate::default_resolvers(),
            ses: Vec::new(),
            detail: Detail::Full,
            dmarc: None,
        }
    }
}

/// Resolvers given by address alone (`check --resolver`), each named by its address.
pub fn resolvers_at(addresses: &[&str]) -> Result<Vec<ResolverConfig>, String> {
    let mut resolvers: Vec<ResolverConfig> = Vec::with_capacity(addresses.len());
    for text in addresses {
        let address = scalar::parse_resolver_address(text)?;
        let name = text.trim().to_lowercase();
        if resolvers.iter().any(|r| r.name == name) {
            return Err(format!("resolver {name} is given twice"));
        }
        let protocol = Protocol::Udp;
        resolvers.push(ResolverConfig {
            name,
            address: SocketAddr::new(address.ip, address.port.unwrap_or(protocol.default_port())),
            protocol,
            max_queries_per_second: DEFAULT_MAX_QPS,
            tls: None,
        });
    }
    Ok(resolvers)
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{path}: {source}")]
    Read {
        /// The file that was asked for.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file was read but is not a valid config.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file, as named on the command line.
        path: String,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column of the offending value.
        column: usize,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&source, &path.display().to_string())
}

/// Parses and validates config text; `origin` names it in errors.
///
/// The domain list is read a domain at a time when it can be cut apart ([`pieces`]); a text
/// that cannot, or that has an error anywhere, is read whole, which finds the error and places
/// it.
pub fn parse(source: &str, origin: &str) -> Result<Loaded, ConfigError> {
    if let Some(pieces) = pieces::cut(source)
        && let Some(loaded) = parse_pieces(&pieces)
    {
        return Ok(loaded);
    }
    parse_whole(source, origin)
}

/// The config of a text cut apart, or `None` on any error.
fn parse_pieces(pieces: &pieces::Pieces<'_>) -> Option<Loaded> {
    let raw: RawConfig = yaml_serde::from_str(&pieces.rest).ok()?;
    let domains = pieces.items.iter().map(|item| {
        let mut one: Vec<RawDomain> = yaml_serde::from_str(item).ok()?;
        one.pop().filter(|_| one.is_empty())
    });
    raw.validate_with(domains).ok()
}

/// [`parse`], with the whole document read at once.
fn parse_whole(source: &str, origin: &str) -> Result<Loaded, ConfigError> {
    let invalid = |line: usize, column: usize, message: String| ConfigError::Invalid {
        path: origin.to_string(),
        line,
        column,
        message,
    };
    let raw: RawConfig = if source.trim().is_empty() {
        RawConfig::default()
    } else {
        yaml_serde::from_str(source).map_err(|err| {
            let (line, column) = err
                .location()
                .map_or((1, 1), |loc| (loc.line(), loc.column()));
            invalid(line, column, strip_location(&err.to_string(), line, column))
        })?
    };
    raw.validate().map_err(|Invalid { path, message }| {
        let (line, column) = locate::locate(source, &path).unwrap_or((1, 1));
        invalid(
            line,
            column,
            format!("{}: {message}", validate::display_path(&path)),
        )
    })
}

/// yaml_serde puts " at line L column C" into its messages; the location goes in front instead.
fn strip_location(message: &str, line: usize, column: usize) -> String {
    message.replacen(&format!(" at line {line} column {column}"), "", 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Expected;

    #[test]
    fn ses_targets_follow_region() {
        let config = parse(
            "domains:\n\
             - domain: Example.com.\n  provider: ses\n  selectors: [ABC]\n\
             - domain: eu.example.com\n  provider: ses\n  region: eu-south-1\n  selectors: [def]\n\
             - domain: us.example.com\n  provider: ses\n  region: us-west-2\n  selectors: [ghi]\n\
             - domain: own.example.com\n  provider: ses\n  dkim_domain: dkim.example.net\n  selectors: [jkl]\n",
            "test.yaml",
        )
        .unwrap();
        let expected: Vec<_> = config
            .records
            .domains
            .iter()
            .map(|d| (d.name.as_str(), d.records[0].expected.clone()))
            .collect();
        assert_eq!(
            expected,
            [
                (
                    "example.com",
                    Expected::Cname("abc.dkim.amazonses.com".into())
                ),
                (
                    "eu.example.com",
                    Expected::Cname("def.dkim.eu-south-1.amazonses.com".into())
                ),
                (
                    "us.example.com",
                    Expected::Cname("ghi.dkim.amazonses.com".into())
                ),
                (
                    "own.example.com",
                    Expected::Cname("jkl.dkim.example.net".into())
                ),
            ]
        );
    }

    /// The config of `source` read whole, and read a domain at a time.
    fn both_ways(source: &str) -> (Loaded, Option<Loaded>) {
        let whole = parse_whole(source, "test.yaml").unwrap();
        let cut = pieces::cut(source).and_then(|p| parse_pieces(&p));
        (whole, cut)
    }

    #[test]
    fn a_list_read_a_domain_at_a_time_is_the_list_read_whole() {
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml"),
        )
        .unwrap();
        let indented = "interval: 30s\ndomains:\n  # one\n  - domain: a.example\n    provider: sendgrid\n    account: acme\n  - domain: b.example\n    records:\n      - {selector: k1, cname: 'k1.{domain_dashed}.example.net'}\n      - selector: t\nauthoritative: false\n";
        for source in [example.as_str(), indented] {
            let (whole, cut) = both_ways(source);
            let cut = cut.expect("read a domain at a time");
            assert!(!whole.records.domains.is_empty());
            assert_eq!(cut.records, whole.records);
            assert_eq!(cut.config, whole.config);
        }
    }

    #[test]
    fn an_item_that_needs_the_rest_of_the_document_is_read_with_it() {
        // An alias to an anchor in another item: the item alone cannot be read.
        let source = "domains:\n- domain: a.example\n  provider: &p ses\n  selectors: [s1]\n- domain: b.example\n  provider: *p\n  selectors: [s2]\n";
        let (whole, cut) = both_ways(source);
        assert!(cut.is_none());
        assert_eq!(parse(source, "test.yaml").unwrap().records, whole.records);
    }

    #[test]
    fn every_error_is_found_and_placed_as_in_the_whole_document() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/bad");
        let mut cut_apart = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            cut_apart += usize::from(pieces::cut(&source).is_some());
            let error = parse(&source, "bad.yaml").err().map(|e| e.to_string());
            let whole = parse_whole(&source, "bad.yaml")
                .err()
                .map(|e| e.to_string());
            assert!(error.is_some(), "{}", path.display());
            assert_eq!(error, whole, "{}", path.display());
        }
        // Most of them have a plain domain list, so the cut path was taken and failed.
        assert!(cut_apart > 10, "{cut_apart}");
    }

    #[test]
    fn defaults() {
        let Loaded { config, records } = parse("", "empty.yaml").unwrap();
        assert!(records.domains.is_empty());
        assert_eq!(config.interval, DEFAULT_INTERVAL);
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
        assert!(config.authoritative);
        let names: Vec<_> = config.resolvers.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["google", "cloudflare", "quad9", "opendns"]);
        assert_eq!(
            config.resolvers[3].address,
            "208.67.222.222:53".parse().unwrap()
        );
    }
}
