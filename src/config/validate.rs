//! The config as written in the file, and the checks that need more than one value:
//! duplicates, fields that only make sense together, defaults.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::scalar::{
    CnameTemplate, ConfigDuration, DnsName, EndpointUrl, Glob, ProfileName, ProviderName, Rate,
    Region, ResolverAddress, ResolverName, RoleArn, Selector, SourceName, check_record_name,
    format_duration, normalise_name,
};
use super::{
    Config, DEFAULT_INTERVAL, DEFAULT_MAX_QPS, DEFAULT_RESOLVERS, DEFAULT_SES_REFRESH,
    DEFAULT_SES_REQUESTS_PER_SECOND, DEFAULT_TIMEOUT, Detail, DomainConfig, MIN_INTERVAL, Protocol,
    RecordConfig, ResolverConfig, SesSource, TlsSettings,
};
use crate::provider::{Expected, Params, Provider};

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
struct RawDomain {
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

fn fail<T>(path: Vec<Seg>, message: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid {
        path,
        message: message.into(),
    })
}

pub(super) fn display_path(path: &[Seg]) -> String {
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
    pub(super) fn validate(self) -> Result<Config, Invalid> {
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
            // A preset's own selectors, when the entry lists none and no records.
            let selectors: Vec<(Selector, Vec<Seg>)> = match (provider, d.selectors) {
                (_, Some(selectors)) => selectors
                    .into_iter()
                    .enumerate()
                    .map(|(j, s)| {
                        (
                            s,
                            vec![Key("domains"), Index(i), Key("selectors"), Index(j)],
                        )
                    })
                    .collect(),
                (Some(provider), None) if d.records.is_none() => provider
                    .default_selectors()
                    .iter()
                    .map(|s| (Selector((*s).to_string()), at("provider")))
                    .collect(),
                _ => Vec::new(),
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
                if let Err(message) = check_record_name(&selector.0, &d.domain.0) {
                    return fail(path, message);
                }
                records.push(RecordConfig {
                    selector: selector.0,
                    expected,
                });
                Ok(())
            };
            if let Some(provider) = provider {
                for (s, path) in selectors {
                    let expected = match provider.expected(&params, &s.0, &d.domain.0) {
                        Ok(expected) => expected,
                        // A missing parameter is the domain entry's fault, not a selector's.
                        Err(message) if message.contains(" needs ") => {
                            return fail(vec![Key("domains"), Index(i)], message);
                        }
                        Err(message) => return fail(path, message),
                    };
                    add(s, expected, path)?;
                }
            }
            for (j, r) in d.records.into_iter().flatten().enumerate() {
                let expected = match r.cname {
                    None => Expected::Txt,
                    Some(template) => {
                        let target = template.expand(&r.selector.0, &d.domain.0);
                        match normalise_name(&target, "name") {
                            Ok(target) => Expected::Cname(target.into()),
                            Err(message) => {
                                return fail(
                                    vec![
                                        Key("domains"),
                                        Index(i),
                                        Key("records"),
                                        Index(j),
                                        Key("cname"),
                                    ],
                                    format!("the template gives {message}"),
                                );
                            }
                        }
                    }
                };
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
            let rotating_pair = Provider::rotating_pair_among(
                provider,
                records.iter().map(|r| r.selector.as_str()),
            );
            domains.push(DomainConfig {
                domain: d.domain.0,
                records,
                rotating_pair,
            });
        }

        let mut ses: Vec<SesSource> = Vec::with_capacity(self.ses.len());
        for (i, source) in self.ses.into_iter().enumerate() {
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
            let refresh = source.refresh.map_or(DEFAULT_SES_REFRESH, |d| d.0);
            if refresh < MIN_INTERVAL {
                return fail(
                    at("refresh"),
                    format!(
                        "refresh must be at least 1s, got {}",
                        format_duration(refresh)
                    ),
                );
            }
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

        Ok(Config {
            interval,
            timeout,
            authoritative: self.authoritative.unwrap_or(true),
            resolvers,
            domains,
            ses,
            detail: self.metrics.detail,
        })
    }
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
