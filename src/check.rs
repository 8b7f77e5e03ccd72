//! One check of one record on one resolver: the query, and what its answer means.
//!
//! [`observe`] is pure: it reads a definitive answer and says what was found, whether the record
//! is present and whether it is correct, so every case is unit-tested without a network.

use std::net::IpAddr;
use std::num::NonZeroU32;

use std::sync::Arc;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use sha2::Digest as _;

use crate::dkim;
use crate::evidence::{
    Extra, Failure, FailureReason, FollowUp, Found, KeyLookup, Keys, Observation, Signature,
};
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
/// A domain's own nameserver is asked with the DO bit, so that a signed zone's answer carries
/// the RRSIGs whose expiration `dnssec_expiring` watches; an unsigned zone's answer is the same
/// either way, and no other query is made for it.
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
    let ask = if client.is_authoritative() {
        Ask::DNSSEC_OK
    } else {
        Ask::default()
    };
    match client.query_in(place, name, record_type, ask).await {
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
        let nxdomain = answers.iter().all(|o| o.nxdomain);
        if nxdomain {
            follow_up.domain_exists = walk::domain_exists(dns.round, record.domain, resolver).await;
        }
        if follow_up.domain_exists != Some(false) {
            // Boxed: five lookups at once make a large future, needed only for missing records.
            follow_up.extra = Box::pin(extra_lookups(resolver, record, nxdomain)).await;
        }
    }
    if let Expected::Cname(target) = record.expected
        && answers.iter().any(|o| o.correct)
        && let Ok(target) = Name::from_ascii(format!("{target}."))
        && let Ok(reply) = resolver.query(&target, RecordType::TXT).await
    {
        follow_up.key = Some(read_key(&target, &reply));
        follow_up.key_chain = Some(chain_from(&reply, &target));
        follow_up.key_via = Some(resolver.name.clone());
    }
    follow_up
}

/// Looks at and near the name of a missing record for what is there instead, and, when the name
/// was NXDOMAIN (`nxdomain`), whether `_domainkey.{domain}` exists at all. `None` when every
/// lookup failed.
async fn extra_lookups(
    resolver: &ResolverClient,
    record: &RecordToCheck<'_>,
    nxdomain: bool,
) -> Option<Extra> {
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
    // When the record's name exists, `_domainkey` above it does too: it is only worth asking
    // about when the name is NXDOMAIN.
    let no_domainkey = async {
        if nxdomain {
            no_domainkey(resolver, record.domain).await
        } else {
            None
        }
    };
    let (addresses, txt_key, doubled, without_underscore, no_domainkey) = tokio::join!(
        addresses,
        txt_key,
        exists_at(doubled),
        exists_at(without_underscore),
        no_domainkey
    );
    if addresses.is_none()
        && txt_key.is_none()
        && doubled.is_none()
        && without_underscore.is_none()
        && no_domainkey.is_none()
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
        no_domainkey: no_domainkey.unwrap_or(false),
    })
}

/// Whether `_domainkey.{domain}` is NXDOMAIN, which means nothing under it exists (RFC 8020):
/// every DKIM record of the domain is gone, not just one. `None` when the lookup failed.
async fn no_domainkey(resolver: &ResolverClient, domain: &str) -> Option<bool> {
    let name = Name::from_ascii(format!("_domainkey.{domain}.")).ok()?;
    let reply = resolver.query(&name, RecordType::TXT).await.ok()?;
    Some(reply.metadata.response_code == ResponseCode::NXDomain)
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
    let signature = first_to_expire(reply);
    let absent = |found| Observation {
        found,
        present: false,
        correct: false,
        ttl: negative_ttl,
        key: None,
        nxdomain,
        ede: ede.clone(),
        signature,
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
                    signature,
                }
            }
            None => absent(Found::None),
        },
        Expected::Txt => {
            // A key record may sit behind a CNAME.
            match txt_at(reply, &end_of_chain(reply, qname)) {
                Some(Txt { value, ttl, more }) => {
                    let key = dkim::parse_key_record(&value);
                    Observation {
                        found: Found::Txt(txt_fingerprint(&value).into()),
                        present: true,
                        correct: key.is_ok(),
                        ttl: Some(ttl),
                        key: Some(Box::new(Keys { key, more })),
                        nxdomain,
                        ede: ede.clone(),
                        signature,
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
        Some(Txt { value, more, .. }) => match dkim::read_key_record(&value) {
            Some(key) => KeyLookup::Found(Keys { key, more }),
            None => KeyLookup::NotFound,
        },
        None => KeyLookup::NotFound,
    }
}

/// Whether a TXT reply holds something that looks like a DKIM key at `owner` itself.
pub fn has_key_record(owner: &Name, reply: &Message) -> bool {
    txt_at(reply, owner).is_some_and(|txt| dkim::looks_like_key_record(&txt.value))
}

/// The RRSIG of a reply's answer section that expires first, expirations compared as DNSSEC
/// times are (RFC 4034 section 3.1.5: serial number arithmetic, so that 2106 is no cliff);
/// `None` when the answer carries none (an unsigned zone, or a query without the DO bit).
pub fn first_to_expire(reply: &Message) -> Option<Signature> {
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) => Some(Signature {
                inception: rrsig.input().sig_inception.get(),
                expiration: NonZeroU32::new(rrsig.input().sig_expiration.get())?,
            }),
            _ => None,
        })
        .reduce(|a, b| {
            if earlier(b.expiration.get(), a.expiration.get()) {
                b
            } else {
                a
            }
        })
}

/// Whether the DNSSEC time `a` comes before `b`, in serial number arithmetic (RFC 1982).
pub fn earlier(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `sha256:` and the first 16 hex digits of the SHA-256 of a TXT value.
pub fn txt_fingerprint(value: &str) -> String {
    let digest = sha2::Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The TXT value read at a name, and the other key records beside it.
struct Txt {
    /// The value meant as a DKIM key (or the first TXT there).
    value: String,
    /// Its TTL.
    ttl: u32,
    /// The other TXT values there that are meant as key records, read (`key_multiple`).
    more: Box<[Result<dkim::DkimKey, dkim::KeyError>]>,
}

/// The TXT value at `owner` that is meant as a DKIM key (or the first TXT there), with its TTL
/// and the other key records at the name.
fn txt_at(reply: &Message, owner: &Name) -> Option<Txt> {
    let mut values: Vec<(String, u32)> = Vec::new();
    for record in reply.answers.iter().filter(|r| same_name(&r.name, owner)) {
        if let RData::TXT(txt) = &record.data {
            let value = dkim::join_txt(txt.txt_data.iter().map(|s| &s[..]));
            // An RRset holds no record twice (RFC 2181 section 5); a server that repeats one
            // publishes one key, not two.
            if !values.iter().any(|(v, _)| *v == value) {
                values.push((value, record.ttl));
            }
        }
    }
    // With one TXT record (the usual case) it is the one, key-like or not. With several, they
    // are read in one order whatever order the server sent them in, so that the key read does
    // not change from one answer to the next.
    values.sort_unstable();
    if values.len() <= 1 {
        let (value, ttl) = values.pop()?;
        return Some(Txt {
            value,
            ttl,
            more: Box::default(),
        });
    }
    let mut keys = values
        .iter()
        .enumerate()
        .filter_map(|(i, (v, _))| dkim::read_key_record(v).map(|key| (i, key)));
    let read = keys.next().map_or(0, |(i, _)| i);
    let more = keys.map(|(_, key)| key).collect();
    let (value, ttl) = values.swap_remove(read);
    Some(Txt { value, ttl, more })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use hickory_proto::rr::Record;
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
        assert_eq!(o.key.unwrap().usable().unwrap().bits, 1024);
    }

    #[test]
    fn every_key_record_at_the_name_is_read_and_a_repeated_one_once() {
        let (one, two) = (
            dkim::tests::rsa_public_key_base64(1024),
            dkim::tests::rsa_public_key_base64(1024),
        );
        let keys = |answers: Vec<Record>| {
            observe(&name(QNAME), &Expected::Txt, &reply(answers))
                .key
                .unwrap()
        };
        let first = format!("v=DKIM1; p={one}");
        let second = format!("v=DKIM1; p={two}");
        let both = keys(vec![
            txt(QNAME, &["v=spf1 -all"]),
            txt(QNAME, &[&first]),
            txt(QNAME, &[&second]),
        ]);
        assert_eq!(both.more.len(), 1);
        assert_ne!(
            both.usable().unwrap().fingerprint,
            both.more[0].as_ref().unwrap().fingerprint
        );
        // The same record twice, and an SPF string beside one key: one key.
        let repeated = keys(vec![txt(QNAME, &[&first]), txt(QNAME, &[&first])]);
        assert!(repeated.more.is_empty());
        let beside = keys(vec![txt(QNAME, &["v=spf1 -all"]), txt(QNAME, &[&first])]);
        assert!(beside.more.is_empty() && beside.usable().is_some());
    }

    #[test]
    fn revoked_txt_key_is_present_but_not_correct() {
        let answer = reply(vec![txt(QNAME, &["v=DKIM1; p="])]);
        let o = observe(&name(QNAME), &Expected::Txt, &answer);
        assert!(o.present && !o.correct);
        assert_eq!(
            o.key,
            Some(Box::new(Keys::one(Err(dkim::KeyError::Revoked))))
        );
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
