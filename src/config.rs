//! The YAML config: parsing, defaults, validation and normalisation.
//!
//! Loading happens in two passes. Serde reads the file into raw structs, and the scalar types that
//! can be checked on their own (durations, names, addresses, providers, regions) refuse bad values
//! while serde still knows where they are, so their errors carry the exact line and column.
//! Checks that need more than one value (duplicates, fields that only make sense together) run on
//! the raw structs afterwards and name the offending value by its path; [`locate`] then finds that
//! path in the source to report its line and column too.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::provider::{Expected, Provider, ses};

/// Checked when `interval` is omitted.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// One DNS query when `timeout` is omitted.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Politeness limit per resolver when `max_queries_per_second` is omitted.
pub const DEFAULT_MAX_QPS: u32 = 50;
/// The shortest interval accepted: faster would be rude to public resolvers.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Resolvers used when the config names none.
pub const DEFAULT_RESOLVERS: [(&str, &str); 4] = [
    ("google", "8.8.8.8"),
    ("cloudflare", "1.1.1.1"),
    ("quad9", "9.9.9.9"),
    ("opendns", "208.67.222.222"),
];

/// A loaded, validated and normalised config.
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
    /// The domains and their records, in config order.
    pub domains: Vec<DomainConfig>,
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

    fn default_port(self) -> u16 {
        match self {
            Protocol::Udp | Protocol::Tcp => 53,
            Protocol::Tls => 853,
            Protocol::Https => 443,
        }
    }
}

/// One domain and the DKIM records expected under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConfig {
    /// Lower-case domain name without the trailing dot.
    pub domain: String,
    /// The records, in config order.
    pub records: Vec<RecordConfig>,
}

/// One DKIM record: `{selector}._domainkey.{domain}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    /// Lower-case selector (one or more labels).
    pub selector: String,
    /// What the record should hold.
    pub expected: Expected,
}

impl RecordConfig {
    /// The DNS name of the record for `domain`.
    pub fn name(&self, domain: &str) -> String {
        format!("{}._domainkey.{}", self.selector, domain)
    }
}

impl Config {
    /// Number of records across all domains.
    pub fn record_count(&self) -> usize {
        self.domains.iter().map(|d| d.records.len()).sum()
    }
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
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&source, &path.display().to_string())
}

/// Parses and validates config text; `origin` names it in errors.
pub fn parse(source: &str, origin: &str) -> Result<Config, ConfigError> {
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
        let (line, column) = locate(source, &path).unwrap_or((1, 1));
        invalid(line, column, format!("{}: {message}", display_path(&path)))
    })
}

/// yaml_serde puts " at line L column C" into its messages; the location goes in front instead.
fn strip_location(message: &str, line: usize, column: usize) -> String {
    message.replacen(&format!(" at line {line} column {column}"), "", 1)
}

// ---------------------------------------------------------------------------------------------
// Raw structs, as written in the file.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    interval: Option<ConfigDuration>,
    timeout: Option<ConfigDuration>,
    authoritative: Option<bool>,
    resolvers: Option<Vec<RawResolver>>,
    #[serde(default)]
    domains: Vec<RawDomain>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResolver {
    name: ResolverName,
    address: ResolverAddress,
    protocol: Option<Protocol>,
    tls_name: Option<DnsName>,
    tls_ca_file: Option<PathBuf>,
    max_queries_per_second: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    domain: DnsName,
    provider: Option<ProviderName>,
    region: Option<Region>,
    dkim_domain: Option<DnsName>,
    selectors: Option<Vec<Selector>>,
    records: Option<Vec<RawRecord>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    selector: Selector,
    cname: Option<DnsName>,
}

/// A step in the path to a value in the YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(&'static str),
    Index(usize),
}

/// A validation failure, before its position is known.
struct Invalid {
    path: Vec<Seg>,
    message: String,
}

fn fail<T>(path: Vec<Seg>, message: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid {
        path,
        message: message.into(),
    })
}

fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

impl RawConfig {
    fn validate(self) -> Result<Config, Invalid> {
        use Seg::{Index, Key};

        let interval = self.interval.map_or(DEFAULT_INTERVAL, |d| d.0);
        if interval < MIN_INTERVAL {
            return fail(
                vec![Key("interval")],
                format!(
                    "interval must be at least 1s, got {}",
                    format_duration(interval)
                ),
            );
        }
        let timeout = self.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
        if timeout.is_zero() {
            return fail(vec![Key("timeout")], "timeout must be greater than 0s");
        }

        let resolvers = match self.resolvers {
            None => default_resolvers(),
            Some(raw) if raw.is_empty() => {
                return fail(
                    vec![Key("resolvers")],
                    "at least one resolver is needed (omit the field for the public defaults)",
                );
            }
            Some(raw) => {
                let mut seen: HashMap<String, usize> = HashMap::new();
                let mut out = Vec::with_capacity(raw.len());
                for (i, r) in raw.into_iter().enumerate() {
                    let at = |field| vec![Key("resolvers"), Index(i), Key(field)];
                    if let Some(first) = seen.insert(r.name.0.clone(), i) {
                        return fail(
                            at("name"),
                            format!(
                                "duplicate resolver name {:?} (also resolvers[{first}])",
                                r.name.0
                            ),
                        );
                    }
                    let protocol = r.protocol.unwrap_or(Protocol::Udp);
                    let tls = match (protocol, r.tls_name) {
                        (Protocol::Udp | Protocol::Tcp, None) => {
                            if r.tls_ca_file.is_some() {
                                return fail(
                                    at("tls_ca_file"),
                                    "tls_ca_file only applies to protocol tls or https",
                                );
                            }
                            None
                        }
                        (Protocol::Udp | Protocol::Tcp, Some(_)) => {
                            return fail(
                                at("tls_name"),
                                "tls_name only applies to protocol tls or https",
                            );
                        }
                        (Protocol::Tls | Protocol::Https, None) => {
                            return fail(
                                at("protocol"),
                                format!(
                                    "protocol {} needs tls_name: the name on the resolver's \
                                     certificate, like cloudflare-dns.com",
                                    protocol.as_str()
                                ),
                            );
                        }
                        (Protocol::Tls | Protocol::Https, Some(name)) => {
                            let extra_roots = match &r.tls_ca_file {
                                Some(path) => match read_ca_file(path) {
                                    Ok(roots) => roots,
                                    Err(message) => return fail(at("tls_ca_file"), message),
                                },
                                None => Vec::new(),
                            };
                            Some(TlsSettings {
                                name: name.0,
                                extra_roots,
                            })
                        }
                    };
                    out.push(ResolverConfig {
                        name: r.name.0,
                        address: SocketAddr::new(
                            r.address.ip,
                            r.address.port.unwrap_or(protocol.default_port()),
                        ),
                        protocol,
                        max_queries_per_second: r.max_queries_per_second.unwrap_or(DEFAULT_MAX_QPS),
                        tls,
                    });
                }
                out
            }
        };

        let mut seen_domains: HashMap<String, usize> = HashMap::new();
        let mut domains = Vec::with_capacity(self.domains.len());
        for (i, d) in self.domains.into_iter().enumerate() {
            let at = |field| vec![Key("domains"), Index(i), Key(field)];
            if let Some(first) = seen_domains.insert(d.domain.0.clone(), i) {
                return fail(
                    at("domain"),
                    format!("duplicate domain {:?} (also domains[{first}])", d.domain.0),
                );
            }
            let dkim_domain = match d.provider.map(|p| p.0) {
                Some(Provider::Ses) => d
                    .dkim_domain
                    .map(|n| n.0)
                    .unwrap_or_else(|| ses::dkim_domain(d.region.as_ref().map(|r| r.0.as_str()))),
                None => {
                    if d.region.is_some() {
                        return fail(at("region"), "region needs provider: ses");
                    }
                    if d.dkim_domain.is_some() {
                        return fail(at("dkim_domain"), "dkim_domain needs provider: ses");
                    }
                    if d.selectors.is_some() {
                        return fail(
                            at("selectors"),
                            "selectors need a provider (provider: ses); list other records \
                             under records: with their cname",
                        );
                    }
                    String::new()
                }
            };

            let mut records = Vec::new();
            let mut seen_selectors: HashMap<String, ()> = HashMap::new();
            let mut add = |selector: Selector, expected: Expected, path: Vec<Seg>| {
                if seen_selectors.insert(selector.0.clone(), ()).is_some() {
                    return fail(
                        path,
                        format!(
                            "duplicate record: selector {:?} is listed twice for {}",
                            selector.0, d.domain.0
                        ),
                    );
                }
                let name_len = selector.0.len() + "._domainkey.".len() + d.domain.0.len();
                if name_len > 253 {
                    return fail(
                        path,
                        format!(
                            "{}._domainkey.{} is {name_len} characters long; DNS names end at 253",
                            selector.0, d.domain.0
                        ),
                    );
                }
                records.push(RecordConfig {
                    selector: selector.0,
                    expected,
                });
                Ok(())
            };
            for (j, s) in d.selectors.into_iter().flatten().enumerate() {
                let target = ses::target(&s.0, &dkim_domain);
                add(
                    s,
                    Expected::Cname(target),
                    vec![Key("domains"), Index(i), Key("selectors"), Index(j)],
                )?;
            }
            for (j, r) in d.records.into_iter().flatten().enumerate() {
                let expected = r.cname.map_or(Expected::Txt, |c| Expected::Cname(c.0));
                add(
                    r.selector,
                    expected,
                    vec![
                        Key("domains"),
                        Index(i),
                        Key("records"),
                        Index(j),
                        Key("selector"),
                    ],
                )?;
            }
            if records.is_empty() {
                return fail(
                    vec![Key("domains"), Index(i)],
                    format!(
                        "domain {} lists no records: give selectors (with a provider) or records",
                        d.domain.0
                    ),
                );
            }
            domains.push(DomainConfig {
                domain: d.domain.0,
                records,
            });
        }

        Ok(Config {
            interval,
            timeout,
            authoritative: self.authoritative.unwrap_or(true),
            resolvers,
            domains,
        })
    }
}

fn default_resolvers() -> Vec<ResolverConfig> {
    DEFAULT_RESOLVERS
        .iter()
        .map(|(name, ip)| ResolverConfig {
            name: (*name).to_string(),
            address: SocketAddr::new(
                ip.parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
                Protocol::Udp.default_port(),
            ),
            protocol: Protocol::Udp,
            max_queries_per_second: DEFAULT_MAX_QPS,
            tls: None,
        })
        .collect()
}

/// Reads the PEM certificates of a `tls_ca_file`.
fn read_ca_file(path: &Path) -> Result<Vec<pki_types::CertificateDer<'static>>, String> {
    use pki_types::pem::PemObject as _;
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read tls_ca_file {}: {e}", path.display()))?;
    let certs: Vec<_> = pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_ca_file {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls_ca_file {} holds no certificate",
            path.display()
        ));
    }
    Ok(certs)
}

// ---------------------------------------------------------------------------------------------
// Scalars that validate themselves, so that serde reports their exact position.

/// Deserializes a scalar through `parse` inside the deserializer, so that an error carries the
/// scalar's own position. Numbers are accepted as their text (YAML reads `20230601` as one).
fn scalar_with<'de, D, T>(d: D, parse: fn(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T>(fn(&str) -> Result<T, String>);
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.0)(&v.to_string()).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            (self.0)(&v.to_string()).map_err(E::custom)
        }
    }
    d.deserialize_any(V(parse))
}

/// A Prometheus-style duration: `1h30m`, `5m`, `30s`, `500ms`.
#[derive(Debug, Clone, Copy)]
struct ConfigDuration(Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| parse_duration(text).map(ConfigDuration))
    }
}

/// Parses a Prometheus duration: one or more `<number><unit>` with units y, w, d, h, m, s, ms,
/// largest first, each at most once.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let bad =
        || format!("invalid duration {text:?}: use a number and a unit, like 30s, 5m or 1h30m");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_ms: u64 = 0;
    let mut last_unit = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let index = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        if last_unit.is_some_and(|last| index <= last) {
            return Err(bad());
        }
        last_unit = Some(index);
        total_ms = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way the config writes them.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// A validated, normalised DNS name (domain, CNAME target or DKIM domain).
#[derive(Debug)]
struct DnsName(String);

impl<'de> Deserialize<'de> for DnsName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| normalise_name(text, "name").map(DnsName))
    }
}

/// A validated, normalised selector: one or more DNS labels.
#[derive(Debug)]
struct Selector(String);

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| {
            let selector = normalise_name(text, "selector")?;
            if selector == "_domainkey" || selector.ends_with("._domainkey") {
                return Err(format!(
                    "selector {text:?} includes _domainkey: give only the part before it"
                ));
            }
            Ok(Selector(selector))
        })
    }
}

/// A resolver name: any non-empty text without spaces, compared case-insensitively.
#[derive(Debug)]
struct ResolverName(String);

impl<'de> Deserialize<'de> for ResolverName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| {
            if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "invalid resolver name {text:?}: use letters, digits and punctuation, no spaces"
                ));
            }
            Ok(ResolverName(text.to_lowercase()))
        })
    }
}

/// Text of a scalar that YAML may have typed as a number.
struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Normalises and validates a DNS name: lower case, no trailing dot, labels of 1–63 letters,
/// digits, hyphens or underscores, 253 characters at most.
pub fn normalise_name(text: &str, what: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let name = trimmed
        .strip_suffix('.')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    if name.is_empty() {
        return Err(format!("empty {what}"));
    }
    if name.len() > 253 {
        return Err(format!(
            "{what} {text:?} is {} characters long; DNS names end at 253",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("invalid {what} {text:?}: empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "invalid {what} {text:?}: label {label:?} is longer than 63 characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            let hint = if c.is_ascii() {
                ""
            } else {
                " (write internationalised names in their xn-- form)"
            };
            return Err(format!(
                "invalid {what} {text:?}: character {c:?} is not allowed{hint}"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "invalid {what} {text:?}: label {label:?} starts or ends with a hyphen"
            ));
        }
    }
    Ok(name)
}

/// A resolver address: an IP, `IP:port`, or `[IPv6]:port`.
#[derive(Debug)]
struct ResolverAddress {
    ip: IpAddr,
    port: Option<u16>,
}

impl<'de> Deserialize<'de> for ResolverAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, parse_resolver_address)
    }
}

fn parse_resolver_address(text: &str) -> Result<ResolverAddress, String> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ResolverAddress { ip, port: None });
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!("invalid resolver address {text:?}: port 0"));
        }
        return Ok(ResolverAddress {
            ip: addr.ip(),
            port: Some(addr.port()),
        });
    }
    Err(format!(
        "invalid resolver address {text:?}: give an IP address, IP:port, or [IPv6]:port \
         (host names are not accepted: a resolver is needed to find them)"
    ))
}

/// A `provider:` name.
#[derive(Debug, Clone, Copy)]
struct ProviderName(Provider);

impl<'de> Deserialize<'de> for ProviderName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| Provider::from_name(text).map(ProviderName))
    }
}

/// An AWS region name.
#[derive(Debug)]
struct Region(String);

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| ses::region(text).map(Region))
    }
}

// ---------------------------------------------------------------------------------------------
// Finding a path in the source.

/// Returns the 1-based line and column of the value at `path` in `source`.
///
/// It walks the document with a seed that descends along the path and raises an error at the
/// target node; yaml_serde stamps that error with the node's position, which is read back.
fn locate(source: &str, path: &[Seg]) -> Option<(usize, usize)> {
    match Locator(path).deserialize(yaml_serde::Deserializer::from_str(source)) {
        Err(err) if err.to_string().contains(HERE) => {
            err.location().map(|loc| (loc.line(), loc.column()))
        }
        _ => None,
    }
}

/// The marker message of the error [`Locator`] raises at its target.
const HERE: &str = "\u{0}located";

struct Locator<'p>(&'p [Seg]);

impl<'de> DeserializeSeed<'de> for Locator<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locator<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.0.split_first() else {
            return self.here();
        };
        while let Some(key) = map.next_key::<ScalarText>()? {
            if key.0 == *want {
                return map.next_value_seed(Locator(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.0.split_first() else {
            return self.here();
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Locator(rest)).map(|_| ())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }
}

impl Locator<'_> {
    fn here<E: de::Error>(&self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(HERE))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("30s5m").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(
            format_duration(Duration::from_millis(5_400_250)),
            "1h30m250ms"
        );
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(
            normalise_name("Example.COM.", "name").as_deref(),
            Ok("example.com")
        );
        assert!(normalise_name("a..b", "name").is_err());
        assert!(normalise_name("-a.b", "name").is_err());
        assert!(normalise_name("ex ample.com", "name").is_err());
        assert!(
            normalise_name("bücher.de", "name")
                .unwrap_err()
                .contains("xn--")
        );
        assert!(normalise_name(&"a".repeat(64), "name").is_err());
    }

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
        let targets: Vec<_> = config
            .domains
            .iter()
            .map(|d| (d.domain.as_str(), d.records[0].expected.clone()))
            .collect();
        assert_eq!(
            targets,
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

    #[test]
    fn defaults() {
        let config = parse("", "empty.yaml").unwrap();
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

    #[test]
    fn locate_finds_nested_values() {
        let src = "a: 1\nlist:\n  - x: 1\n  - x: 2\n    y: hello\n";
        let path = [Seg::Key("list"), Seg::Index(1), Seg::Key("y")];
        assert_eq!(locate(src, &path), Some((5, 8)));
        assert_eq!(locate(src, &[Seg::Key("nope")]), None);
    }
}
