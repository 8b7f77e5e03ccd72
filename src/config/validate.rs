//! The config as written in the file, and the checks that need more than one value:
//! duplicates, fields that only make sense together, defaults.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::dmarc::{RawDmarc, dmarc};
use super::scalar::{
    CnameTemplate, ConfigDuration, DnsName, EndpointUrl, Glob, ProfileName, ProviderName, Rate,
    Region, ResolverAddress, ResolverName, RoleArn, Selector, SourceName, check_record_name,
    format_duration, normalise_name,
};
use super::{
    Config, DEFAULT_INTERVAL, DEFAULT_MAX_QPS, DEFAULT_RESOLVERS, DEFAULT_SES_REFRESH,
    DEFAULT_SES_REQUESTS_PER_SECOND, DEFAULT_TIMEOUT, Detail, Loaded, MIN_INTERVAL, Protocol,
    ResolverConfig, SesSource, TlsSettings,
};
use crate::provider::{Expected, ExpectedError, Params, Provider};
use crate::records::{Domain, Record, Records};
use Seg::{Index, Key};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    interval: Option<ConfigDuration>,
    timeout: Option<ConfigDuration>,
    authoritative: Option<bool>,
    resolvers: Option<Vec<RawResolver>>,
    #[serde(default)]
    domains: Vec<RawDomain>,
    #[serde(default)]
    ses: Vec<RawSes>,
    #[serde(default)]
    metrics: RawMetrics,
    dmarc: Option<RawDmarc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default)]
    detail: Detail,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSes {
    name: SourceName,
    region: Region,
    profile: Option<ProfileName>,
    role_arn: Option<RoleArn>,
    endpoint: Option<EndpointUrl>,
    refresh: Option<ConfigDuration>,
    #[serde(default)]
    include: Vec<Glob>,
    #[serde(default)]
    exclude: Vec<Glob>,
    max_requests_per_second: Option<Rate>,
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
pub(super) struct RawDomain {
    domain: DnsName,
    provider: Option<ProviderName>,
    region: Option<Region>,
    dkim_domain: Option<DnsName>,
    account: Option<DnsName>,
    tenant_domain: Option<DnsName>,
    selectors: Option<Vec<Selector>>,
    records: Option<Vec<RawRecord>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    selector: Selector,
    cname: Option<CnameTemplate>,
}

/// A step in the path to a value in the YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(&'static str),
    Index(usize),
}

/// A validation failure, before its position is known.
pub(super) struct Invalid {
    /// Where the value is.
    pub(super) path: Vec<Seg>,
    /// What is wrong with it.
    pub(super) message: String,
}

pub(super) fn fail<T>(path: Vec<Seg>, message: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid {
        path,
        message: message.into(),
    })
}

pub(super) fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Key(k) if out.is_empty() => out.push_str(k),
            Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

impl RawConfig {
    /// Checks what needs more than one value, and gives the settings and the records the file
    /// declares.
    pub(super) fn validate(mut self) -> Result<Loaded, Invalid> {
        let domains = std::mem::take(&mut self.domains);
        self.validate_with(domains.into_iter().map(Some))
    }

    /// [`RawConfig::validate`] with the domains read apart, each `None` that could not be read
    /// (see [`super::pieces`]); the list in `self` is not looked at.
    pub(super) fn validate_with(
        self,
        domains: impl ExactSizeIterator<Item = Option<RawDomain>>,
    ) -> Result<Loaded, Invalid> {
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
        let config = Config {
            interval,
            timeout,
            authoritative: self.authoritative.unwrap_or(true),
            resolvers: resolvers(self.resolvers)?,
            ses: ses_sources(self.ses)?,
            detail: self.metrics.detail,
            dmarc: dmarc(self.dmarc)?,
        };
        Ok(Loaded {
            config,
            records: records(domains)?,
        })
    }
}

/// `resolvers:`: the public defaults when omitted.
fn resolvers(raw: Option<Vec<RawResolver>>) -> Result<Vec<ResolverConfig>, Invalid> {
    let raw = match raw {
        None => return Ok(default_resolvers()),
        Some(raw) if raw.is_empty() => {
            return fail(
                vec![Key("resolvers")],
                "at least one resolver is needed (omit the field for the public defaults)",
            );
        }
        Some(raw) => raw,
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        if let Some(first) = seen.insert(r.name.0.clone(), i) {
            return fail(
                vec![Key("resolvers"), Index(i), Key("name")],
                format!(
                    "duplicate resolver name {:?} (also resolvers[{first}])",
                    r.name.0
                ),
            );
        }
        out.push(resolver(r, i)?);
    }
    Ok(out)
}

/// `resolvers[i]`: its protocol and the TLS settings that go with it.
fn resolver(r: RawResolver, i: usize) -> Result<ResolverConfig, Invalid> {
    let at = |field| vec![Key("resolvers"), Index(i), Key(field)];
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
                Some(path) => {
                    read_ca_file(path).or_else(|message| fail(at("tls_ca_file"), message))?
                }
                None => Vec::new(),
            };
            Some(TlsSettings {
                name: name.0,
                extra_roots,
            })
        }
    };
    Ok(ResolverConfig {
        name: r.name.0,
        address: SocketAddr::new(
            r.address.ip,
            r.address.port.unwrap_or(protocol.default_port()),
        ),
        protocol,
        max_queries_per_second: r.max_queries_per_second.unwrap_or(DEFAULT_MAX_QPS),
        tls,
    })
}

/// `domains:`: every domain and its records, in file order; `None` for one that could not be
/// read.
fn records(raw: impl ExactSizeIterator<Item = Option<RawDomain>>) -> Result<Records, Invalid> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut domains = Vec::with_capacity(raw.len());
    for (i, d) in raw.enumerate() {
        let Some(d) = d else {
            return fail(vec![Key("domains"), Index(i)], "cannot be read on its own");
        };
        if let Some(first) = seen.insert(d.domain.0.clone(), i) {
            return fail(
                vec![Key("domains"), Index(i), Key("domain")],
                format!("duplicate domain {:?} (also domains[{first}])", d.domain.0),
            );
        }
        domains.push(domain(d, i)?);
    }
    Ok(Records { domains })
}

/// `domains[i]`: the records of its provider's selectors, then those it lists itself.
fn domain(d: RawDomain, i: usize) -> Result<Domain, Invalid> {
    let at = |field| vec![Key("domains"), Index(i), Key(field)];
    let provider = d.provider.map(|p| p.0);
    let params = Params {
        region: d.region.map(|r| r.0),
        dkim_domain: d.dkim_domain.map(|n| n.0),
        account: d.account.map(|n| n.0),
        tenant_domain: d.tenant_domain.map(|n| n.0),
    };
    if let Some((param, owners)) = params.foreign_to(provider) {
        return fail(at(param), format!("{param} needs provider: {owners}"));
    }
    if provider.is_none() && d.selectors.is_some() {
        return fail(
            at("selectors"),
            "selectors need a provider (provider: ses, sendgrid, …); list other \
             records under records: with their cname",
        );
    }
    let name = d.domain.0;
    let mut records = DomainRecords {
        domain: &name,
        records: Vec::new(),
    };
    if let Some(provider) = provider {
        let selectors = preset_selectors(provider, d.selectors, d.records.is_some(), i);
        for (selector, path) in selectors {
            let expected = match provider.expected(&params, &selector.0, &name) {
                Ok(expected) => expected,
                // A missing parameter is the domain entry's fault, not a selector's.
                Err(ExpectedError::MissingParam(message)) => {
                    return fail(vec![Key("domains"), Index(i)], message);
                }
                Err(ExpectedError::UnknownSelector(message)) => return fail(path, message),
            };
            records.add(selector, expected, path)?;
        }
    }
    for (j, r) in d.records.into_iter().flatten().enumerate() {
        let at = |field| {
            vec![
                Key("domains"),
                Index(i),
                Key("records"),
                Index(j),
                Key(field),
            ]
        };
        let expected = match r.cname {
            None => Expected::Txt,
            Some(template) => {
                let target = template.expand(&r.selector.0, &name);
                match normalise_name(&target, "name") {
                    Ok(target) => Expected::Cname(target.into()),
                    Err(message) => {
                        return fail(at("cname"), format!("the template gives {message}"));
                    }
                }
            }
        };
        records.add(r.selector, expected, at("selector"))?;
    }
    let DomainRecords { records, .. } = records;
    if records.is_empty() {
        return fail(
            vec![Key("domains"), Index(i)],
            format!("domain {name} lists no records: give selectors (with a provider) or records"),
        );
    }
    Ok(Domain::new(name, records, provider))
}

/// The selectors of `domains[i]` with where each is written: those it lists, or else, when it
/// lists no records either, its provider's own.
fn preset_selectors(
    provider: Provider,
    listed: Option<Vec<Selector>>,
    has_records: bool,
    i: usize,
) -> Vec<(Selector, Vec<Seg>)> {
    match listed {
        Some(selectors) => selectors
            .into_iter()
            .enumerate()
            .map(|(j, s)| {
                (
                    s,
                    vec![Key("domains"), Index(i), Key("selectors"), Index(j)],
                )
            })
            .collect(),
        None if !has_records => provider
            .default_selectors()
            .iter()
            .map(|s| {
                (
                    Selector((*s).to_string()),
                    vec![Key("domains"), Index(i), Key("provider")],
                )
            })
            .collect(),
        None => Vec::new(),
    }
}

/// The records of one domain as they are added, refusing a selector listed twice.
struct DomainRecords<'a> {
    /// The domain's name.
    domain: &'a str,
    /// The records so far.
    records: Vec<Record>,
}

impl DomainRecords<'_> {
    /// Adds the record of `selector`, written at `path`.
    fn add(
        &mut self,
        selector: Selector,
        expected: Expected,
        path: Vec<Seg>,
    ) -> Result<(), Invalid> {
        if self.records.iter().any(|r| r.selector == selector.0) {
            return fail(
                path,
                format!(
                    "duplicate record: selector {:?} is listed twice for {}",
                    selector.0, self.domain
                ),
            );
        }
        if let Err(message) = check_record_name(&selector.0, self.domain) {
            return fail(path, message);
        }
        self.records.push(Record {
            selector: selector.0,
            expected,
            from_ses: None,
            from_dmarc: false,
        });
        Ok(())
    }
}

/// `ses:`: the SES sources, each with its own name.
fn ses_sources(raw: Vec<RawSes>) -> Result<Vec<SesSource>, Invalid> {
    let mut ses: Vec<SesSource> = Vec::with_capacity(raw.len());
    for (i, source) in raw.into_iter().enumerate() {
        let at = |field| vec![Key("ses"), Index(i), Key(field)];
        if let Some(first) = ses.iter().position(|s| s.name == source.name.0) {
            return fail(
                at("name"),
                format!(
                    "duplicate source name {:?} (also ses[{first}])",
                    source.name.0
                ),
            );
        }
        let refresh = refresh(source.refresh, DEFAULT_SES_REFRESH, at("refresh"))?;
        let rate = source
            .max_requests_per_second
            .map_or(DEFAULT_SES_REQUESTS_PER_SECOND, |r| r.0);
        ses.push(SesSource {
            name: source.name.0,
            region: source.region.0,
            profile: source.profile.map(|p| p.0),
            role_arn: source.role_arn.map(|r| r.0),
            endpoint: source.endpoint.map(|e| e.0),
            refresh,
            include: source.include,
            exclude: source.exclude,
            request_interval: Duration::from_secs_f64(1.0 / rate),
        });
    }
    Ok(ses)
}

/// A source's `refresh` (`default` when omitted): at least [`MIN_INTERVAL`].
pub(super) fn refresh(
    raw: Option<ConfigDuration>,
    default: Duration,
    path: Vec<Seg>,
) -> Result<Duration, Invalid> {
    let refresh = raw.map_or(default, |d| d.0);
    if refresh < MIN_INTERVAL {
        return fail(
            path,
            format!(
                "refresh must be at least 1s, got {}",
                format_duration(refresh)
            ),
        );
    }
    Ok(refresh)
}

pub(super) fn default_resolvers() -> Vec<ResolverConfig> {
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
pub(super) fn read_ca_file(path: &Path) -> Result<Vec<pki_types::CertificateDer<'static>>, String> {
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
