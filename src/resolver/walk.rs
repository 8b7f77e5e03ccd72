//! Walking the delegation of a domain whose names no resolver can resolve, as `dig +trace` does:
//! the closest enclosing zone that resolves, what its nameservers say of the domain (asked
//! without recursion), and how each nameserver it delegates to answers when asked directly.
//!
//! A walk runs once per broken domain per round and asks a handful of questions: the parent
//! zone's SOA through each failing resolver (which also shows those resolvers work), its NS,
//! one or two of its nameservers for the delegation, and each delegated nameserver (at most
//! eight) for the domain's SOA.

use std::net::IpAddr;
use std::sync::Arc;

use futures_util::future::join_all;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::message::{addresses_at, normalise};
use super::nameservers::{Nameservers, RoundNameservers, first_address, ns_hosts, once_per_round};
use super::{Ask, ResolverClient, lock};
use crate::evidence::{Delegation, Nameserver, Walk};

/// The most nameservers of the parent zone asked for the delegation.
const PARENT_SERVERS: usize = 2;

/// The most delegated nameservers asked.
const DELEGATED_SERVERS: usize = 8;

/// The walk of `domain` this round, made once and shared by the domain's records. `resolvers`
/// are the configured resolvers that failed on the domain's names.
pub async fn walk(
    nameservers: &Nameservers,
    round: &RoundNameservers,
    domain: &str,
    resolvers: &[Arc<ResolverClient>],
) -> Arc<Walk> {
    let cell = once_per_round(&round.walks, domain);
    cell.get_or_init(|| async {
        let walk = Box::pin(run(nameservers, round, domain, resolvers)).await;
        tracing::debug!(domain, walk = %walk, "delegation walked");
        Arc::new(walk)
    })
    .await
    .clone()
}

/// Whether `domain` exists, asked once a round through `resolver` (its SOA); `None` when the
/// resolver gave no definitive answer.
pub async fn domain_exists(
    round: &RoundNameservers,
    domain: &str,
    resolver: &ResolverClient,
) -> Option<bool> {
    let cell = once_per_round(&round.exists, domain);
    *cell
        .get_or_init(|| async {
            let name = Name::from_ascii(format!("{domain}.")).ok()?;
            let reply = resolver.query(&name, RecordType::SOA).await.ok()?;
            Some(reply.metadata.response_code != ResponseCode::NXDomain)
        })
        .await
}

async fn run(
    nameservers: &Nameservers,
    round: &RoundNameservers,
    domain: &str,
    resolvers: &[Arc<ResolverClient>],
) -> Walk {
    let mut walk = Walk {
        domain: domain.to_string(),
        working: Vec::new(),
        parent: None,
        delegation: Delegation::Unknown,
    };
    // The closest enclosing zone that resolves, asked through every failing resolver.
    let mut source = None;
    for candidate in parents(domain) {
        let Ok(name) = Name::from_ascii(format!("{candidate}.")) else {
            break;
        };
        let asked = join_all(resolvers.iter().map(|resolver| {
            let name = &name;
            async move { (resolver, resolver.query(name, RecordType::SOA).await) }
        }))
        .await;
        for (resolver, reply) in asked {
            let Ok(reply) = reply else { continue };
            walk.working.push(resolver.name.clone());
            if walk.parent.is_none()
                && let Some(zone) = zone_of(&reply).filter(|z| z != domain)
            {
                walk.parent = Some(zone);
                source = Some(resolver.clone());
            }
        }
        if walk.parent.is_some() || !walk.working.is_empty() {
            break;
        }
    }
    let (Some(parent), Some(source)) = (walk.parent.clone(), source) else {
        return walk;
    };
    let Ok(parent_name) = Name::from_ascii(format!("{parent}.")) else {
        return walk;
    };
    let Ok(domain_name) = Name::from_ascii(format!("{domain}.")) else {
        return walk;
    };
    let resolvers = std::slice::from_ref(&source);

    // What the parent's nameservers say of the domain.
    let Ok(parent_ns) = source.query(&parent_name, RecordType::NS).await else {
        return walk;
    };
    let mut hosts = ns_hosts(&parent_ns, &parent_name);
    hosts.sort();
    for host in hosts.iter().take(PARENT_SERVERS) {
        let Some(ip) = address(nameservers, round, host, &parent_ns, resolvers).await else {
            continue;
        };
        let client = walked(nameservers, round, host, ip);
        let Ok(reply) = client
            .ask(&domain_name, RecordType::NS, Ask::REFERRAL)
            .await
        else {
            continue;
        };
        if reply.metadata.response_code == ResponseCode::NXDomain {
            walk.delegation = Delegation::NotFound;
            return walk;
        }
        let delegated = delegated_hosts(&reply, &domain_name, &parent_name);
        if delegated.is_empty() {
            walk.delegation = Delegation::NotDelegated;
            return walk;
        }
        // Each delegated nameserver, asked directly for the domain's SOA.
        let asked = delegated.iter().take(DELEGATED_SERVERS).map(|host| {
            let (reply, domain_name) = (&reply, &domain_name);
            async move {
                let address = address(nameservers, round, host, reply, resolvers).await;
                let failure = match address {
                    Some(ip) => walked(nameservers, round, host, ip)
                        .query(domain_name, RecordType::SOA)
                        .await
                        .err()
                        .map(|f| f.reason),
                    None => None,
                };
                Nameserver {
                    host: host.clone(),
                    address,
                    failure,
                }
            }
        });
        walk.delegation = Delegation::To(join_all(asked).await);
        return walk;
    }
    walk
}

/// The client for a nameserver the walk asks, noted as in use this round.
fn walked(
    nameservers: &Nameservers,
    round: &RoundNameservers,
    host: &str,
    ip: IpAddr,
) -> Arc<ResolverClient> {
    let client = nameservers.client(host, ip);
    let mut walked = lock(&round.walked);
    if !walked.iter().any(|c| Arc::ptr_eq(c, &client)) {
        walked.push(client.clone());
    }
    client
}

/// The enclosing zones of `domain`, closest first, down to its top-level domain.
fn parents(domain: &str) -> impl Iterator<Item = &str> {
    domain
        .match_indices('.')
        .map(move |(i, _)| &domain[i + 1..])
}

/// The zone a SOA reply names: the owner of the SOA in the answer, or in the authority section
/// of an empty answer.
fn zone_of(reply: &Message) -> Option<String> {
    reply
        .answers
        .iter()
        .chain(&reply.authorities)
        .find_map(|r| matches!(r.data, RData::SOA(_)).then(|| normalise(&r.name)))
}

/// The nameservers a reply delegates `domain` to: NS records owned by the domain or by a zone
/// cut between it and the parent, in a referral's authority section or an authoritative answer.
fn delegated_hosts(reply: &Message, domain: &Name, parent: &Name) -> Vec<String> {
    let mut hosts: Vec<String> = reply
        .answers
        .iter()
        .chain(&reply.authorities)
        .filter(|r| r.name.zone_of(domain) && !same(&r.name, parent))
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(normalise(&ns.0)),
            _ => None,
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn same(a: &Name, b: &Name) -> bool {
    normalise(a) == normalise(b)
}

/// A nameserver's address: from the glue in `reply`, or looked up through `resolvers`.
async fn address(
    nameservers: &Nameservers,
    round: &RoundNameservers,
    host: &str,
    reply: &Message,
    resolvers: &[Arc<ResolverClient>],
) -> Option<IpAddr> {
    let name = Name::from_ascii(format!("{host}.")).ok()?;
    let glue: Vec<IpAddr> = reply
        .additionals
        .iter()
        .filter(|r| same(&r.name, &name))
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .chain(addresses_at(&name, reply))
        .collect();
    match first_address(glue) {
        Some(ip) => Some(ip),
        None => nameservers.address_of(round, host, &name, resolvers).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_up_to_the_top_level_domain() {
        let all: Vec<&str> = parents("a.b.example.com").collect();
        assert_eq!(all, ["b.example.com", "example.com", "com"]);
        assert_eq!(parents("com").count(), 0);
    }
}
