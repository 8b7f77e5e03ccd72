//! A domain's own nameservers: finding them each round and keeping a client for each.
//!
//! The NS records of the domain (or of the zone it lives in, named by the SOA of an empty answer)
//! are looked up through the configured resolvers, each nameserver's address too (from glue when
//! the answer carries it), and each nameserver is then asked directly, without recursion, as the
//! resolver `auth:{host}`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::sync::OnceCell;

use super::message::{addresses_at, normalise};
use super::{ResolverClient, lock};
use crate::evidence::Walk;
use crate::metrics::Metrics;

/// The most nameservers asked per domain; delegations rarely list more than eight.
const MAX_NAMESERVERS: usize = 8;

/// The port nameservers listen on.
pub const DNS_PORT: u16 = 53;

/// Clients for every nameserver seen, kept across rounds for their connections and counters.
pub struct Nameservers {
    /// Where nameservers are asked: port 53, or a test server's port.
    port: u16,
    /// One query's timeout.
    timeout: Duration,
    /// Where the `auth:` clients' counters live.
    metrics: Arc<Metrics>,
    /// Clients by `auth:` name and address.
    clients: Mutex<HashMap<(String, SocketAddr), Arc<ResolverClient>>>,
}

/// A domain's nameserver clients, found once per round; `None` when they could not be found.
type DomainServers = Arc<OnceCell<Option<Vec<Arc<ResolverClient>>>>>;

/// What one round learnt about each domain's DNS, so each domain and host is looked up once a
/// round.
#[derive(Default)]
pub struct RoundNameservers {
    /// Each domain's nameserver clients; `None` when they could not be found.
    domains: Mutex<HashMap<String, DomainServers>>,
    /// Each nameserver host's address; `None` when it has none or the lookup failed.
    hosts: Mutex<HashMap<String, Arc<OnceCell<Option<IpAddr>>>>>,
    /// Whether each domain asked about exists; `None` when no resolver answered.
    pub(super) exists: Mutex<HashMap<String, Arc<OnceCell<Option<bool>>>>>,
    /// The delegation walk of each domain no resolver could resolve.
    pub(super) walks: Mutex<HashMap<String, Arc<OnceCell<Arc<Walk>>>>>,
    /// The nameservers the walks asked: kept in use like the domains' own, so their counters
    /// last while a domain stays broken instead of starting again every round.
    pub(super) walked: Mutex<Vec<Arc<ResolverClient>>>,
}

impl Nameservers {
    /// Nameservers are asked on `port` (53 but in tests), each query bounded by `timeout`.
    pub fn new(port: u16, timeout: Duration, metrics: Arc<Metrics>) -> Self {
        Nameservers {
            port,
            timeout,
            metrics,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The clients of `domain`'s nameservers for this round, found through `resolvers`; `None`
    /// when no resolver gave a definitive answer.
    pub async fn of(
        &self,
        round: &RoundNameservers,
        domain: &str,
        resolvers: &[Arc<ResolverClient>],
    ) -> Option<Vec<Arc<ResolverClient>>> {
        let cell = once_per_round(&round.domains, domain);
        cell.get_or_init(|| self.discover(round, domain, resolvers))
            .await
            .clone()
    }

    async fn discover(
        &self,
        round: &RoundNameservers,
        domain: &str,
        resolvers: &[Arc<ResolverClient>],
    ) -> Option<Vec<Arc<ResolverClient>>> {
        let domain_name = Name::from_ascii(format!("{domain}.")).ok()?;
        let mut reply = ask(resolvers, &domain_name, RecordType::NS).await?;
        let mut hosts = ns_hosts(&reply, &domain_name);
        if hosts.is_empty() {
            // Not a zone apex: the SOA of the empty answer names the zone.
            let zone = reply.authorities.iter().find_map(|r| match &r.data {
                RData::SOA(_) => Some(r.name.clone()),
                _ => None,
            });
            if let Some(zone) = zone.filter(|z| normalise(z) != domain) {
                reply = ask(resolvers, &zone, RecordType::NS).await?;
                hosts = ns_hosts(&reply, &zone);
            }
        }
        hosts.sort();
        hosts.dedup();
        hosts.truncate(MAX_NAMESERVERS);

        let mut clients = Vec::with_capacity(hosts.len());
        for host in hosts {
            let Ok(host_name) = Name::from_ascii(format!("{host}.")) else {
                continue;
            };
            let glue = addresses_at(&host_name, &reply);
            let address = match first_address(glue) {
                Some(address) => Some(address),
                None => self.address_of(round, &host, &host_name, resolvers).await,
            };
            match address {
                Some(ip) => clients.push(self.client(&host, ip)),
                None => {
                    tracing::warn!(domain, nameserver = %host, "nameserver has no address; not asked")
                }
            }
        }
        Some(clients)
    }

    pub(super) async fn address_of(
        &self,
        round: &RoundNameservers,
        host: &str,
        host_name: &Name,
        resolvers: &[Arc<ResolverClient>],
    ) -> Option<IpAddr> {
        let cell = once_per_round(&round.hosts, host);
        *cell
            .get_or_init(|| async {
                for record_type in [RecordType::A, RecordType::AAAA] {
                    if let Some(reply) = ask(resolvers, host_name, record_type).await
                        && let Some(ip) = first_address(addresses_at(host_name, &reply))
                    {
                        return Some(ip);
                    }
                }
                None
            })
            .await
    }

    /// The client for the nameserver `host` at `ip` (on the nameserver port), kept across
    /// rounds while a domain uses it.
    pub(super) fn client(&self, host: &str, ip: IpAddr) -> Arc<ResolverClient> {
        let address = SocketAddr::new(ip, self.port);
        let name = format!("auth:{host}");
        lock(&self.clients)
            .entry((name.clone(), address))
            .or_insert_with(|| {
                Arc::new(ResolverClient::authoritative(
                    host,
                    address,
                    self.timeout,
                    self.metrics.resolver(&name),
                ))
            })
            .clone()
    }

    /// How long one query may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Every nameserver client kept.
    pub fn clients(&self) -> Vec<Arc<ResolverClient>> {
        lock(&self.clients).values().cloned().collect()
    }

    /// Drops the clients (and their series) of nameservers no domain uses any more.
    pub fn retain(&self, in_use: &[Arc<ResolverClient>]) {
        let mut clients = lock(&self.clients);
        let before: Vec<String> = clients.keys().map(|(name, _)| name.clone()).collect();
        clients.retain(|_, client| in_use.iter().any(|c| Arc::ptr_eq(c, client)));
        for name in before {
            if !clients.keys().any(|(n, _)| *n == name) {
                self.metrics.forget_resolver(&name);
            }
        }
    }
}

impl RoundNameservers {
    /// Every client handed out this round.
    pub fn in_use(&self) -> Vec<Arc<ResolverClient>> {
        let mut in_use: Vec<Arc<ResolverClient>> = lock(&self.domains)
            .values()
            .filter_map(|cell| cell.get().cloned().flatten())
            .flatten()
            .collect();
        in_use.extend(lock(&self.walked).iter().cloned());
        in_use
    }
}

/// The cell of `key` in one of a round's maps, made on first use: whatever fills it is looked up
/// once a round, however many records ask.
pub(super) fn once_per_round<T>(
    map: &Mutex<HashMap<String, Arc<OnceCell<T>>>>,
    key: &str,
) -> Arc<OnceCell<T>> {
    lock(map).entry(key.to_string()).or_default().clone()
}

/// Asks the configured resolvers in turn until one answers definitively.
pub(super) async fn ask(
    resolvers: &[Arc<ResolverClient>],
    name: &Name,
    record_type: RecordType,
) -> Option<Message> {
    for resolver in resolvers {
        if let Ok(reply) = resolver.query(name, record_type).await {
            return Some(reply);
        }
    }
    None
}

pub(super) fn ns_hosts(reply: &Message, owner: &Name) -> Vec<String> {
    let owner = normalise(owner);
    reply
        .answers
        .iter()
        .filter(|r| normalise(&r.name) == owner)
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(normalise(&ns.0)),
            _ => None,
        })
        .collect()
}

/// The first address, IPv4 before IPv6, in sorted order so the choice is stable.
pub(super) fn first_address(mut addresses: Vec<IpAddr>) -> Option<IpAddr> {
    addresses.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    addresses.into_iter().next()
}
