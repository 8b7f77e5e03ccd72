//! One check of one record on one resolver: the query, and what its answer means.
//!
//! [`observe`] is pure: it reads a definitive answer and says what was found, whether the record
//! is present and whether it is correct, so every case is unit-tested without a network.

use std::net::IpAddr;

use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use sha2::Digest as _;

use crate::dkim;
use crate::evidence::{Extra, Failure, FailureReason, FollowUp, Found, KeyLookup, Observation};
use crate::provider::Expected;
use crate::resolver::message::ede;
use crate::resolver::message::{
    addresses_at, chain_from, cname_target_at, end_of_chain, is_named, negative_ttl, normalise,
    same_name,
};
use crate::resolver::nameservers::{Nameservers, RoundNameservers};
use crate::resolver::{Ask, Place, ResolverClient, walk};

/// How many addresses found in place of a record are kept (and shown in `dkim_record_info`).
pub const MAX_ADDRESSES: usize = 16;

/// Looks up the record `name` on `client` and reads the answer against `expected`.
///
/// A resolver's SERVFAIL is asked again once with checking disabled, unless its Extended DNS
/// Error already says DNSSEC: an answer then means the resolver validates and the zone's
/// signatures are bogus ([`Failure::dnssec_bogus`]), which is the domain's failure, not the
/// resolver's.
pub async fn check_record(
    client: &ResolverClient,
    place: Place,
    name: &Name,
    expected: &Expected,
) -> Result<Observation, Failure> {
    let record_type = query_type(expected);
    match client
        .query_in(place, name, record_type, Ask::default())
        .await
    {
        Ok(reply) => Ok(observe(name, expected, &reply)),
        Err(mut failure)
            if failure.reason == FailureReason::Servfail && !client.is_authoritative() =>
        {
            failure.dnssec_bogus = match &failure.ede {
                Some(ede) if ede.is_dnssec() => true,
                // Boxed: a rare path, kept out of every check's future.
                _ => Box::pin(client.ask(name, record_type, Ask::CHECKING_DISABLED))
                    .await
                    .is_ok(),
            };
            Err(failure)
        }
        Err(failure) => Err(failure),
    }
}

/// What a follow-up needs to know about a record.
pub struct RecordToCheck<'a> {
    /// `{selector}._domainkey.{domain}`.
    pub name: &'a Name,
    /// The record's domain.
    pub domain: &'a str,
    /// The record's selector.
    pub selector: &'a str,
    /// What the record should hold.
    pub expected: &'a Expected,
}

/// Where the follow-up finds a domain's DNS: its nameservers, and what this round learnt about
/// each domain already.
pub struct DomainDns<'a> {
    /// Clients for nameservers, kept across rounds.
    pub nameservers: &'a Nameservers,
    /// This round's findings, so each domain is looked at once.
    pub round: &'a RoundNameservers,
}

/// The second step of a record's round, once every configured resolver has been asked: asks the
/// domain's nameservers, looks for the causes of a missing record (a domain that does not exist
/// first), follows a correct CNAME to its key, and walks the delegation of a record that no
/// resolver could resolve. `answered` are the configured resolvers that answered this round,
/// with what they said (the extra lookups go to the first of them); `failed` the ones that did
/// not, and whether DNSSEC validation explains it.
pub async fn follow_up(
    record: &RecordToCheck<'_>,
    answered: &[(Arc<ResolverClient>, Observation)],
    failed: &[(Arc<ResolverClient>, bool)],
    nameservers: Option<Vec<Arc<ResolverClient>>>,
    dns: DomainDns<'_>,
) -> FollowUp {
    let asked = match nameservers {
        Some(servers) => {
            let checks = servers.iter().map(|server| async move {
                let place = server.place().await;
                let outcome = check_record(server, place, record.name, record.expected).await;
                (server.name.clone(), outcome)
            });
            Some(futures_util::future::join_all(checks).await)
        }
        None => None,
    };
    let nameserver_answers = asked.iter().flatten().filter_map(|(_, o)| o.as_ref().ok());
    let answers: Vec<&Observation> = answered
        .iter()
        .map(|(_, o)| o)
        .chain(nameserver_answers)
        .collect();
    let mut follow_up = FollowUp {
        nameservers: asked.clone(),
        ..FollowUp::default()
    };
    let Some((resolver, _)) = answered.first() else {
        // No resolver answered: walk the delegation, unless DNSSEC explains every failure.
        if failed.iter().any(|(_, dnssec_bogus)| !dnssec_bogus) {
            let failing: Vec<Arc<ResolverClient>> =
                failed.iter().map(|(client, _)| client.clone()).collect();
            follow_up.walk =
                Some(walk::walk(dns.nameservers, dns.round, record.domain, &failing).await);
        }
        return follow_up;
    };
    if !answers.is_empty() && answers.iter().all(|o| !o.present) {
        if answers.iter().all(|o| o.nxdomain) {
            follow_up.domain_exists = walk::domain_exists(dns.round, record.domain, resolver).await;
        }
        if follow_up.domain_exists != Some(false) {
            // Boxed: four lookups at once make a large future, needed only for missing records.
            follow_up.extra = Box::pin(extra_lookups(resolver, record)).await;
        }
    }
    if let Expected::Cname(target) = record.expected
        && answers.iter().any(|o| o.correct)
        && let Ok(target) = Name::from_ascii(format!("{target}."))
        && let Ok(reply) = resolver.query(&target, RecordType::TXT).await
    {
        follow_up.key = Some(read_key(&target, &reply));
        follow_up.key_chain = Some(chain_from(&reply, &target));
    }
    follow_up
}

/// Looks at and near the name of a missing record for what is there instead. `None` when every
/// lookup failed.
async fn extra_lookups(resolver: &ResolverClient, record: &RecordToCheck<'_>) -> Option<Extra> {
    let doubled = format!("{}.{}", normalise(record.name), record.domain);
    let without_underscore = format!("{}.domainkey.{}", record.selector, record.domain);
    let exists_at = |text: String| async move {
        let name = Name::from_ascii(format!("{text}.")).ok()?;
        let reply = resolver
            .query(&name, query_type(record.expected))
            .await
            .ok()?;
        Some(
            observe(&name, record.expected, &reply)
                .present
                .then_some(text),
        )
    };
    let is_cname = matches!(record.expected, Expected::Cname(_));
    // A and TXT at the name only explain a missing CNAME; `None` also stands for not asked.
    let addresses = async {
        if !is_cname {
            return None;
        }
        let a = resolver.query(record.name, RecordType::A).await.ok();
        let aaaa = resolver.query(record.name, RecordType::AAAA).await.ok();
        if a.is_none() && aaaa.is_none() {
            return None;
        }
        let mut found: Vec<IpAddr> = a
            .iter()
            .chain(aaaa.iter())
            .flat_map(|reply| addresses_at(record.name, reply))
            .collect();
        found.sort();
        found.dedup();
        // A name with thousands of addresses must not make a label of hundreds of kilobytes.
        found.truncate(MAX_ADDRESSES);
        Some(found)
    };
    // Addresses equal to the expected target's: the DNS host flattens the CNAME.
    let addresses_of = |name: Name| async move {
        let a = resolver.query(&name, RecordType::A).await.ok();
        let aaaa = resolver.query(&name, RecordType::AAAA).await.ok();
        let mut found: Vec<IpAddr> = a
            .iter()
            .chain(aaaa.iter())
            .flat_map(|reply| addresses_at(&name, reply))
            .collect();
        found.sort();
        found.dedup();
        found.truncate(MAX_ADDRESSES);
        found
    };
    let txt_key = async {
        if !is_cname {
            return None;
        }
        let reply = resolver.query(record.name, RecordType::TXT).await.ok()?;
        Some(has_key_record(record.name, &reply))
    };
    let (addresses, txt_key, doubled, without_underscore) = tokio::join!(
        addresses,
        txt_key,
        exists_at(doubled),
        exists_at(without_underscore)
    );
    if addresses.is_none() && txt_key.is_none() && doubled.is_none() && without_underscore.is_none()
    {
        return None;
    }
    let addresses = addresses.unwrap_or_default();
    let flattened = match record.expected {
        Expected::Cname(target) if !addresses.is_empty() => {
            match Name::from_ascii(format!("{target}.")) {
                Ok(target) => addresses_of(target).await == addresses,
                Err(_) => false,
            }
        }
        _ => false,
    };
    Some(Extra {
        addresses,
        flattened,
        txt_key: txt_key.unwrap_or(false),
        doubled: doubled.flatten(),
        without_underscore: without_underscore.flatten(),
    })
}

/// The record type asked for: the expected type.
pub fn query_type(expected: &Expected) -> RecordType {
    match expected {
        Expected::Cname(_) => RecordType::CNAME,
        Expected::Txt => RecordType::TXT,
    }
}

/// Reads a definitive answer for `qname`.
pub fn observe(qname: &Name, expected: &Expected, reply: &Message) -> Observation {
    let nxdomain = reply.metadata.response_code == ResponseCode::NXDomain;
    let negative_ttl = negative_ttl(reply);
    let ede = ede(reply);
    let absent = |found| Observation {
        found,
        present: false,
        correct: false,
        ttl: negative_ttl,
        key: None,
        nxdomain,
        ede: ede.clone(),
    };
    let cname = cname_target_at(reply, qname);
    match expected {
        Expected::Cname(target) => match cname {
            Some((found, ttl)) => {
                // The expected target's string, shared, when the record points there: the
                // common case is compared label by label, without making a string.
                let found = if is_named(found, target) {
                    target.clone()
                } else {
                    match normalise(found) {
                        same if same == **target => target.clone(),
                        other => other.into(),
                    }
                };
                Observation {
                    correct: found == *target,
                    found: Found::Cname(found),
                    present: true,
                    ttl: Some(ttl),
                    key: None,
                    nxdomain,
                    ede: ede.clone(),
                }
            }
            None => absent(Found::None),
        },
        Expected::Txt => {
            // A key record may sit behind a CNAME.
            match txt_at(reply, &end_of_chain(reply, qname)) {
                Some((value, ttl)) => {
                    let key = dkim::parse_key_record(&value);
                    Observation {
                        found: Found::Txt(txt_fingerprint(&value).into()),
                        present: true,
                        correct: key.is_ok(),
                        ttl: Some(ttl),
                        key: Some(Box::new(key)),
                        nxdomain,
                        ede: ede.clone(),
                    }
                }
                None => match cname {
                    Some((target, _)) => absent(Found::Cname(normalise(target).into())),
                    None => absent(Found::None),
                },
            }
        }
    }
}

/// Reads the DKIM key at `owner` (following CNAMEs within the answer) from a TXT reply.
pub fn read_key(owner: &Name, reply: &Message) -> KeyLookup {
    match txt_at(reply, &end_of_chain(reply, owner)) {
        Some((value, _)) => match dkim::read_key_record(&value) {
            Some(key) => KeyLookup::Found(key),
            None => KeyLookup::NotFound,
        },
        None => KeyLookup::NotFound,
    }
}

/// Whether a TXT reply holds something that looks like a DKIM key at `owner` itself.
pub fn has_key_record(owner: &Name, reply: &Message) -> bool {
    txt_at(reply, owner).is_some_and(|(value, _)| dkim::looks_like_key_record(&value))
}

/// `sha256:` and the first 16 hex digits of the SHA-256 of a TXT value.
pub fn txt_fingerprint(value: &str) -> String {
    let digest = sha2::Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The TXT value at `owner` that is meant as a DKIM key (or the first TXT there), with its TTL.
fn txt_at(reply: &Message, owner: &Name) -> Option<(String, u32)> {
    let values: Vec<(String, u32)> = reply
        .answers
        .iter()
        .filter(|r| same_name(&r.name, owner))
        .filter_map(|r: &Record| match &r.data {
            RData::TXT(txt) => Some((dkim::join_txt(txt.txt_data.iter().map(|s| &s[..])), r.ttl)),
            _ => None,
        })
        .collect();
    // With one TXT record (the usual case) it is the one, key-like or not.
    let keyish = match values.len() {
        0 | 1 => 0,
        _ => values
            .iter()
            .position(|(v, _)| dkim::looks_like_key_record(v))
            .unwrap_or(0),
    };
    values.into_iter().nth(keyish)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use hickory_proto::rr::rdata::{CNAME, SOA, TXT};

    use super::*;

    fn name(text: &str) -> Name {
        Name::from_str(text).unwrap()
    }

    fn reply(answers: Vec<Record>) -> Message {
        let mut message = Message::response(1, hickory_proto::op::OpCode::Query);
        message.metadata.response_code = ResponseCode::NoError;
        message.answers = answers;
        message
    }

    fn cname(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 600, RData::CNAME(CNAME(name(target))))
    }

    fn txt(owner: &str, strings: &[&str]) -> Record {
        Record::from_rdata(
            name(owner),
            300,
            RData::TXT(TXT::new(strings.iter().map(|s| s.to_string()).collect())),
        )
    }

    const QNAME: &str = "abc._domainkey.example.com.";
    fn ses() -> Expected {
        Expected::Cname("abc.dkim.amazonses.com".into())
    }

    #[test]
    fn correct_cname_in_any_case_and_with_trailing_dot() {
        let answer = reply(vec![cname(
            "ABC._DomainKey.Example.COM.",
            "ABC.dkim.AmazonSES.com.",
        )]);
        let o = observe(&name(QNAME), &ses(), &answer);
        assert_eq!(o.found, Found::Cname("abc.dkim.amazonses.com".into()));
        assert!(o.present && o.correct);
        assert_eq!(o.ttl, Some(600));
    }

    #[test]
    fn wrong_target_is_present_but_not_correct() {
        let answer = reply(vec![cname(QNAME, "abc.dkim.amazonses.co.")]);
        let o = observe(&name(QNAME), &ses(), &answer);
        assert!(o.present && !o.correct);
        assert_eq!(o.found.value(), "abc.dkim.amazonses.co");
    }

    #[test]
    fn empty_answer_is_absent_with_negative_ttl() {
        let mut answer = reply(vec![]);
        answer.metadata.response_code = ResponseCode::NXDomain;
        answer.authorities.push(Record::from_rdata(
            name("example.com."),
            3600,
            RData::SOA(SOA::new(
                name("ns1.example.com."),
                name("hostmaster.example.com."),
                1,
                7200,
                900,
                1_209_600,
                120,
            )),
        ));
        let o = observe(&name(QNAME), &ses(), &answer);
        assert_eq!(o.found, Found::None);
        assert!(!o.present && !o.correct);
        assert_eq!(o.ttl, Some(120));
    }

    #[test]
    fn cname_for_another_name_is_ignored() {
        let answer = reply(vec![cname(
            "other._domainkey.example.com.",
            "abc.dkim.amazonses.com.",
        )]);
        let o = observe(&name(QNAME), &ses(), &answer);
        assert!(!o.present);
    }

    #[test]
    fn txt_key_split_into_strings_behind_a_cname() {
        let key = dkim::tests::rsa_public_key_base64(1024);
        let (a, b) = key.split_at(100);
        let answer = reply(vec![
            cname(QNAME, "key.example.net."),
            txt("key.example.net.", &["spf-like junk"]),
            txt("key.example.net.", &["v=DKIM1; k=rsa; p=", a, b]),
        ]);
        let o = observe(&name(QNAME), &Expected::Txt, &answer);
        assert!(o.present && o.correct);
        let value = format!("v=DKIM1; k=rsa; p={key}");
        assert_eq!(o.found, Found::Txt(txt_fingerprint(&value).into()));
        assert_eq!(o.key.unwrap().unwrap().bits, 1024);
    }

    #[test]
    fn revoked_txt_key_is_present_but_not_correct() {
        let answer = reply(vec![txt(QNAME, &["v=DKIM1; p="])]);
        let o = observe(&name(QNAME), &Expected::Txt, &answer);
        assert!(o.present && !o.correct);
        assert_eq!(o.key, Some(Box::new(Err(dkim::KeyError::Revoked))));
    }

    #[test]
    fn cname_loop_in_answer_terminates() {
        let answer = reply(vec![
            cname(QNAME, "b.example.com."),
            cname("b.example.com.", QNAME),
        ]);
        let o = observe(&name(QNAME), &Expected::Txt, &answer);
        assert!(!o.present);
        assert_eq!(o.found, Found::Cname("b.example.com".into()));
    }

    #[test]
    fn fingerprint_is_sha256_prefix() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(txt_fingerprint("abc"), "sha256:ba7816bf8f01cfea");
    }
}
