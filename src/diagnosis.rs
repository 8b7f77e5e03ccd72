//! Diagnosis: from what the resolvers answered to the named problems of the contract.
//!
//! [`diagnose`] is pure. It sees the latest definitive observation of every answering resolver
//! (configured and `auth:`), the extra lookups made because the record was missing, and the key
//! found at the end of the record, and returns the problems that hold, each with a detail that
//! names what was seen. Problems that explain the same symptom exclude each other: a CNAME is a
//! wrong region, or a typo, or a wrong target, never two of these; a record correct on one
//! resolver and absent on another is not propagated, never missing.
//!
//! Failures of the domain's own DNS are named too, never blamed on resolvers: validating
//! resolvers that reject the zone's signatures make `dnssec_bogus`; a record no resolver can
//! resolve while the resolvers work (the delegation walk shows it) is `unresolvable`, with what
//! the walk found; a record NXDOMAIN everywhere under a domain that does not exist is
//! `domain_not_found` rather than `missing`.

use std::net::IpAddr;

use crate::dkim::{DkimKey, KeyError, KeyType};
use crate::evidence::{
    Ede, Extra, FailureReason, Found, KeyLookup, Keys, Observation, Signature, Walk,
};
use crate::problem::Problem;
use crate::provider::{self, Expected};

/// RSA keys below this size are weak (RFC 8301 requires at least 1024 bits).
pub const MIN_RSA_BITS: u32 = 1024;

/// Signatures that expire within this many seconds make `dnssec_expiring`: three days, long
/// enough to fix a stopped signer before validating receivers reject the key.
pub const SIGNATURES_EXPIRING_WITHIN: f64 = 3.0 * 86_400.0;

/// ... and only once less than this share of their validity period (inception to expiration) is
/// left. A signer at work renews signatures long before (Knot at half their lifetime, BIND at a
/// quarter); one that signs each answer afresh, valid for a day or two, always serves signatures
/// that expire within 3 days but were made moments ago, and has not stopped.
pub const SIGNATURES_LEFT_SHARE: f64 = 1.0 / 3.0;

/// One problem found, with what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The problem.
    pub problem: Problem,
    /// What was seen, naming resolvers, targets and names.
    pub detail: String,
}

impl crate::changes::Finding for Finding {
    type Problem = Problem;

    fn problem(&self) -> Problem {
        self.problem
    }

    fn detail(&self) -> &str {
        &self.detail
    }
}

/// Everything the diagnosis of one record looks at.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    /// The record's domain.
    pub domain: &'a str,
    /// The record's selector.
    pub selector: &'a str,
    /// What the record should hold.
    pub expected: &'a Expected,
    /// The latest observation of each answering resolver, by resolver name.
    pub answers: Vec<(&'a str, &'a Observation)>,
    /// The configured resolvers whose latest lookup failed.
    pub failures: Vec<Failed<'a>>,
    /// The extra lookups, when the record was missing and they ran.
    pub extra: Option<&'a Extra>,
    /// The key at the end of a CNAME record, when it was followed.
    pub key: Option<&'a KeyLookup>,
    /// Whether the domain itself exists, when asked (the record was NXDOMAIN everywhere).
    pub domain_exists: Option<bool>,
    /// The walk of the domain's delegation, when no resolver resolved the record.
    pub walk: Option<&'a Walk>,
    /// The domain's nameservers (its DNS host), where a missing record is to be added.
    pub nameservers: Vec<&'a str>,
    /// Each of the domain's nameservers that serves the record signed, with its signature over
    /// the record that expires first.
    pub signatures: Vec<(&'a str, Signature)>,
    /// Unix time of the check: signatures expire against it.
    pub now: f64,
    /// The key this process has followed the record to (its current one), if any.
    pub seen_key: Option<&'a DkimKey>,
    /// The key the record led to before its current one, when this process saw it change:
    /// while resolvers disagree, the ones still serving it are the ones behind.
    pub previous_key: Option<&'a DkimKey>,
}

/// The Unix time of a DNSSEC time (seconds since the epoch modulo 2^32, RFC 4034 section
/// 3.1.5), read as the one within 68 years of `now`.
pub fn unix_time(dnssec: u32, now: f64) -> f64 {
    let now = now as i64;
    let offset = dnssec.wrapping_sub(now as u32) as i32;
    (now + i64::from(offset)) as f64
}

/// A configured resolver's failed lookup of the record.
#[derive(Debug, Clone)]
pub struct Failed<'a> {
    /// The resolver's name.
    pub resolver: &'a str,
    /// Why the lookup failed.
    pub reason: FailureReason,
    /// The Extended DNS Error of the reply, if any.
    pub ede: Option<&'a Ede>,
    /// The resolver validates DNSSEC and rejected the zone's signatures.
    pub dnssec_bogus: bool,
}

/// The problems that hold for one record; empty when it is healthy or nothing is known.
pub fn diagnose(evidence: &Evidence<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut add = |problem, detail: String| findings.push(Finding { problem, detail });
    dnssec_bogus(evidence, &mut add);
    let answers = &evidence.answers;
    if answers.is_empty() {
        unresolvable(evidence, &mut add);
        return findings;
    }
    let correct: Vec<&str> = answers
        .iter()
        .filter(|(_, o)| o.correct)
        .map(|(r, _)| *r)
        .collect();
    if !answers.iter().any(|(_, o)| o.present) {
        absent(evidence, &mut add);
    } else if !correct.is_empty() {
        not_propagated(evidence, &correct, &mut add);
    } else if let Expected::Cname(expected) = evidence.expected {
        // Present somewhere, correct nowhere.
        wrong_targets(evidence, expected, &mut add);
    }
    // Keys: only for a record that is correct somewhere.
    if !correct.is_empty() || matches!(evidence.expected, Expected::Txt) {
        key_problems(evidence, &mut add);
    }
    dnssec_expiring(evidence, &mut add);
    findings
}

/// The domain's nameservers serve the record with signatures that expire soon: the zone is not
/// being re-signed, and validating receivers will reject the key once they expire.
fn dnssec_expiring(evidence: &Evidence<'_>, add: &mut impl FnMut(Problem, String)) {
    let expiring: Vec<String> = evidence
        .signatures
        .iter()
        .filter(|(_, signature)| {
            let made = unix_time(signature.inception, evidence.now);
            let expires = unix_time(signature.expiration.get(), evidence.now);
            let left = expires - evidence.now;
            left < SIGNATURES_EXPIRING_WITHIN && left < (expires - made) * SIGNATURES_LEFT_SHARE
        })
        .map(|&(server, signature)| (server, unix_time(signature.expiration.get(), evidence.now)))
        .map(|(server, at)| {
            let when = crate::logging::rfc3339_at(at);
            let left = at - evidence.now;
            if left <= 0.0 {
                format!("{server}: expired at {when}")
            } else {
                format!("{server}: {when}, in {}", hours_and_days(left))
            }
        })
        .collect();
    if !expiring.is_empty() {
        add(
            Problem::DnssecExpiring,
            format!(
                "the DNSSEC signatures over the record expire within 3 days, with less than a \
                 third of their validity left, and have not been renewed: {}",
                expiring.join("; ")
            ),
        );
    }
}

/// `2 days 5 hours`, `7 hours`, `under an hour`: how long until something, for a detail.
fn hours_and_days(seconds: f64) -> String {
    let hours = (seconds / 3600.0) as u64;
    let (days, hours) = (hours / 24, hours % 24);
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match (days, hours) {
        (0, 0) => "under an hour".to_string(),
        (0, h) => plural(h, "hour"),
        (d, 0) => plural(d, "day"),
        (d, h) => format!("{} {}", plural(d, "day"), plural(h, "hour")),
    }
}

/// Validating resolvers reject the zone: receivers that validate cannot fetch the key, even
/// where a resolver that does not validate answers.
fn dnssec_bogus(evidence: &Evidence<'_>, add: &mut impl FnMut(Problem, String)) {
    let bogus: Vec<String> = evidence
        .failures
        .iter()
        .filter(|f| f.dnssec_bogus)
        .map(|f| match f.ede {
            Some(ede) => format!("{} ({ede})", f.resolver),
            None => format!("{} (answers only with checking disabled)", f.resolver),
        })
        .collect();
    if !bogus.is_empty() {
        add(
            Problem::DnssecBogus,
            format!("DNSSEC validation fails on {}", bogus.join(", ")),
        );
    }
}

/// No resolver answered. Unresolvable when working resolvers fail on it (the walk found some
/// that answer for the parent zone); otherwise nothing is known.
fn unresolvable(evidence: &Evidence<'_>, add: &mut impl FnMut(Problem, String)) {
    let failing: Vec<&str> = evidence
        .failures
        .iter()
        .filter(|f| !f.dnssec_bogus)
        .map(|f| f.resolver)
        .collect();
    if let Some(walk) = evidence.walk.filter(|w| w.explains())
        && !failing.is_empty()
    {
        add(
            Problem::Unresolvable,
            format!("{} fail on it: {walk}", failing.join(", ")),
        );
    }
}

/// No answering resolver has the record: the domain is gone, or the record is missing, and the
/// extra lookups may say why.
fn absent(evidence: &Evidence<'_>, add: &mut impl FnMut(Problem, String)) {
    let answers = &evidence.answers;
    let resolvers: Vec<&str> = answers.iter().map(|(r, _)| *r).collect();
    let nxdomain_everywhere = answers.iter().all(|(_, o)| o.nxdomain);
    if nxdomain_everywhere && evidence.domain_exists == Some(false) {
        add(
            Problem::DomainNotFound,
            format!(
                "the domain itself does not exist (NXDOMAIN) on {}",
                resolvers.join(", ")
            ),
        );
        return;
    }
    let host = match evidence.nameservers.as_slice() {
        [] => String::new(),
        servers => format!("; the domain's DNS is served by {}", servers.join(", ")),
    };
    let gone = match evidence.extra {
        Some(extra) if extra.no_domainkey => format!(
            "; _domainkey.{} does not exist (NXDOMAIN), so the domain has no DKIM record at all: \
             a zone replaced or records lost in a DNS move, not one record left out",
            evidence.domain
        ),
        _ => String::new(),
    };
    add(
        Problem::Missing,
        format!("no record on {}{gone}{host}", resolvers.join(", ")),
    );
    if let Some(extra) = evidence.extra {
        missing_causes(evidence.expected, extra, add);
    }
}

/// Correct on the resolvers `correct`, and not yet on the others that answered; or correct
/// everywhere, but with different keys: a key being replaced, which has not reached them all.
fn not_propagated(
    evidence: &Evidence<'_>,
    correct: &[&str],
    add: &mut impl FnMut(Problem, String),
) {
    let mut parts: Vec<String> = Vec::new();
    let lagging: Vec<String> = evidence
        .answers
        .iter()
        .filter(|(_, o)| !o.correct)
        .map(|(r, o)| match &o.found {
            Found::None => format!("{r} has no record"),
            found => format!("{r} returns {} {}", found.record_type(), found.value()),
        })
        .collect();
    if !lagging.is_empty() {
        parts.push(format!("correct on {}", correct.join(", ")));
        parts.extend(lagging);
    }
    if let Some(keys) = keys_differ(evidence) {
        parts.push(keys);
    }
    if !parts.is_empty() {
        add(Problem::NotPropagated, parts.join("; "));
    }
}

/// The answering resolvers serve different usable keys: which serve which, and, when it can be
/// told, which key is the new one: the one the domain's own nameservers serve; else, of two,
/// not the one this process followed before the current one, or else not the current one.
fn keys_differ(evidence: &Evidence<'_>) -> Option<String> {
    let mut groups: Vec<(&DkimKey, Vec<&str>)> = Vec::new();
    for (resolver, o) in &evidence.answers {
        let Some(key) = o.key.as_deref().and_then(Keys::usable) else {
            continue;
        };
        match groups
            .iter_mut()
            .find(|(k, _)| k.fingerprint == key.fingerprint)
        {
            Some((_, serving)) => serving.push(resolver),
            None => groups.push((key, vec![resolver])),
        }
    }
    if groups.len() < 2 {
        return None;
    }
    let served_by_nameservers: Vec<usize> = (0..groups.len())
        .filter(|&g| groups[g].1.iter().any(|r| r.starts_with("auth:")))
        .collect();
    let position = |key: Option<&DkimKey>| {
        let key = key?;
        groups
            .iter()
            .position(|(k, _)| k.fingerprint == key.fingerprint)
    };
    let new = match served_by_nameservers.as_slice() {
        [only] => Some(*only),
        _ if groups.len() == 2 => position(evidence.previous_key)
            .or_else(|| position(evidence.seen_key))
            .map(|old| 1 - old),
        _ => None,
    };
    let serve = |serving: &[&str]| {
        let verb = if serving.len() == 1 {
            "serves"
        } else {
            "serve"
        };
        format!("{} {verb}", serving.join(", "))
    };
    let key = |k: &DkimKey| format!("{} ({} bits)", k.fingerprint, k.bits);
    Some(match new {
        Some(new) => {
            let (new_key, serving) = &groups[new];
            let mut text = format!(
                "the key is being replaced: {} the new key {}",
                serve(serving),
                key(new_key)
            );
            for (old_key, serving) in groups
                .iter()
                .enumerate()
                .filter(|(g, _)| *g != new)
                .map(|(_, g)| g)
            {
                text.push_str(&format!(
                    "; {} the old key {}",
                    serve(serving),
                    key(old_key)
                ));
            }
            text
        }
        None => {
            let each: Vec<String> = groups
                .iter()
                .map(|(k, serving)| format!("{} {}", serve(serving), key(k)))
                .collect();
            format!("resolvers serve different keys: {}", each.join("; "))
        }
    })
}

/// What each wrong CNAME target (once per target) says, against `expected`.
fn wrong_targets(evidence: &Evidence<'_>, expected: &str, add: &mut impl FnMut(Problem, String)) {
    let mut seen: Vec<&str> = Vec::new();
    for (resolver, o) in &evidence.answers {
        if let Found::Cname(target) = &o.found {
            if seen.contains(&&**target) {
                continue;
            }
            seen.push(target);
            let (problem, why) =
                provider::classify_wrong_target(evidence.selector, expected, target);
            add(
                problem,
                format!("{resolver}: points at {target}{why}, expected {expected}"),
            );
        }
    }
}

/// What is wrong with the key the record leads to: none, several, unreadable, weak, testing,
/// sha1 only.
fn key_problems(evidence: &Evidence<'_>, add: &mut impl FnMut(Problem, String)) {
    let key = match evidence.expected {
        Expected::Cname(target) => evidence.key.map(|k| (k.clone(), target.to_string())),
        Expected::Txt => evidence
            .answers
            .iter()
            .filter_map(|(_, o)| o.key.as_deref())
            // Several key records on any resolver is the problem; else the first one's key.
            .reduce(|first, keys| {
                if first.more.is_empty() && !keys.more.is_empty() {
                    keys
                } else {
                    first
                }
            })
            .map(|k| (KeyLookup::Found(k.clone()), "the record".to_string())),
    };
    // The same key written twice (other spacing, `v=` or not) is not: either one verifies.
    if let Some((KeyLookup::Found(keys), at)) = &key
        && keys.more.iter().any(|other| *other != keys.key)
    {
        let each: Vec<String> = keys.all().map(describe_key).collect();
        add(
            Problem::KeyMultiple,
            format!(
                "{at} holds {} DKIM key records: {}; receivers pick one",
                each.len(),
                each.join(", ")
            ),
        );
    }
    match key {
        Some((KeyLookup::NotFound, at)) => {
            add(Problem::KeyMissing, format!("no DKIM key record at {at}"));
        }
        Some((KeyLookup::Found(Keys { key: Err(e), .. }), at)) => {
            add(Problem::KeyInvalid, format!("{at}: {e}"));
        }
        Some((KeyLookup::Found(Keys { key: Ok(key), .. }), at)) => {
            if key.key_type == KeyType::Rsa && key.bits < MIN_RSA_BITS {
                add(
                    Problem::KeyWeak,
                    format!(
                        "{}-bit RSA key; at least {MIN_RSA_BITS} bits are needed",
                        key.bits
                    ),
                );
            }
            if key.flags.testing {
                add(
                    Problem::KeyTesting,
                    format!("{at}: t=y, the domain is testing DKIM"),
                );
            }
            if key.flags.sha1_only {
                add(Problem::KeySha1Only, format!("{at}: h= allows only sha1"));
            }
        }
        None => {}
    }
}

/// One key record, as a detail names it: `sha256:0123456789abcdef (2048-bit RSA)`.
fn describe_key(key: &Result<DkimKey, KeyError>) -> String {
    match key {
        Ok(key) => {
            let kind = match key.key_type {
                KeyType::Rsa => "RSA",
                KeyType::Ed25519 => "ed25519",
            };
            format!("{} ({}-bit {kind})", key.fingerprint, key.bits)
        }
        Err(e) => format!("an unusable one ({e})"),
    }
}

/// Why a record is missing, from the extra lookups.
fn missing_causes(expected: &Expected, extra: &Extra, add: &mut impl FnMut(Problem, String)) {
    if matches!(expected, Expected::Cname(_)) {
        if !extra.addresses.is_empty() {
            let addresses: Vec<String> = extra.addresses.iter().map(IpAddr::to_string).collect();
            if extra.flattened {
                add(
                    Problem::CnameFlattened,
                    format!(
                        "the name has address records {}, the addresses of the expected target: \
                         the DNS host answers with the CNAME flattened",
                        addresses.join(", ")
                    ),
                );
            } else {
                add(
                    Problem::ARecord,
                    format!("the name has address records {}", addresses.join(", ")),
                );
            }
        }
        if extra.txt_key {
            add(
                Problem::TxtInsteadOfCname,
                "the name holds a DKIM key as TXT".to_string(),
            );
        }
    }
    if let Some(name) = &extra.doubled {
        add(
            Problem::DoubledDomain,
            format!("the record exists at {name}"),
        );
    }
    if let Some(name) = &extra.without_underscore {
        add(
            Problem::MissingUnderscore,
            format!("the record exists at {name}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::{DkimKey, Fingerprint, KeyError, KeyFlags};

    const SEL: &str = "abc";

    fn ses() -> Expected {
        Expected::Cname("abc.dkim.amazonses.com".into())
    }

    fn cname(target: &str, expected: &Expected) -> Observation {
        let correct = matches!(expected, Expected::Cname(t) if **t == *target);
        Observation {
            found: Found::Cname(target.into()),
            present: true,
            correct,
            ttl: Some(300),
            key: None,
            nxdomain: false,
            ede: None,
            signature: None,
        }
    }

    fn absent() -> Observation {
        Observation {
            found: Found::None,
            present: false,
            correct: false,
            ttl: Some(60),
            key: None,
            nxdomain: true,
            ede: None,
            signature: None,
        }
    }

    fn txt(key: Result<DkimKey, KeyError>) -> Observation {
        Observation {
            found: Found::Txt("sha256:0123456789abcdef".into()),
            present: true,
            correct: key.is_ok(),
            ttl: Some(300),
            key: Some(Box::new(Keys::one(key))),
            nxdomain: false,
            ede: None,
            signature: None,
        }
    }

    fn rsa(bits: u32) -> DkimKey {
        DkimKey {
            key_type: KeyType::Rsa,
            bits,
            flags: KeyFlags::default(),
            fingerprint: Fingerprint(u64::from(bits).to_be_bytes()),
        }
    }

    fn problems(evidence: &Evidence<'_>) -> Vec<Problem> {
        diagnose(evidence).into_iter().map(|f| f.problem).collect()
    }

    fn evidence<'a>(
        expected: &'a Expected,
        answers: Vec<(&'a str, &'a Observation)>,
    ) -> Evidence<'a> {
        Evidence {
            domain: "example.com",
            selector: SEL,
            expected,
            answers,
            failures: Vec::new(),
            extra: None,
            key: None,
            domain_exists: None,
            walk: None,
            nameservers: Vec::new(),
            signatures: Vec::new(),
            now: NOW,
            seen_key: None,
            previous_key: None,
        }
    }

    /// 2026-12-07T00:00:00Z.
    const NOW: f64 = 1_796_601_600.0;

    static GOOD_KEY: std::sync::LazyLock<KeyLookup> = std::sync::LazyLock::new(|| {
        KeyLookup::Found(Keys::one(Ok(DkimKey {
            key_type: KeyType::Rsa,
            bits: 2048,
            flags: KeyFlags {
                testing: false,
                sha1_only: false,
            },
            fingerprint: Fingerprint([0x20; 8]),
        })))
    });

    #[test]
    fn healthy_record_has_no_problem() {
        let expected = ses();
        let good = cname("abc.dkim.amazonses.com", &expected);
        let mut e = evidence(
            &expected,
            vec![("google", &good), ("auth:ns1.example.com", &good)],
        );
        e.key = Some(&*GOOD_KEY);
        assert_eq!(problems(&e), []);
    }

    #[test]
    fn nothing_known_is_no_verdict() {
        let expected = ses();
        assert_eq!(problems(&evidence(&expected, vec![])), []);
    }

    #[test]
    fn missing_everywhere() {
        let expected = ses();
        let none = absent();
        let findings = diagnose(&evidence(
            &expected,
            vec![("google", &none), ("quad9", &none)],
        ));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].problem, Problem::Missing);
        assert_eq!(findings[0].detail, "no record on google, quad9");
    }

    #[test]
    fn correct_on_authoritative_missing_on_one_resolver_is_not_propagated() {
        let expected = ses();
        let good = cname("abc.dkim.amazonses.com", &expected);
        let none = absent();
        let mut e = evidence(
            &expected,
            vec![
                ("google", &good),
                ("quad9", &none),
                ("auth:ns1.example.com", &good),
            ],
        );
        e.key = Some(&*GOOD_KEY);
        let findings = diagnose(&e);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].problem, Problem::NotPropagated);
        assert_eq!(
            findings[0].detail,
            "correct on google, auth:ns1.example.com; quad9 has no record"
        );
    }

    #[test]
    fn old_zone_on_one_nameserver_is_not_propagated_not_wrong_target() {
        let expected = ses();
        let good = cname("abc.dkim.amazonses.com", &expected);
        let old = cname("old.example.net", &expected);
        let mut e = evidence(&expected, vec![("auth:ns1", &good), ("auth:ns2", &old)]);
        e.key = Some(&*GOOD_KEY);
        assert_eq!(problems(&e), [Problem::NotPropagated]);
    }

    #[test]
    fn typo_is_not_also_wrong_target() {
        let expected = ses();
        let typo = cname("abc.dkim.amazonses.co", &expected);
        let findings = diagnose(&evidence(&expected, vec![("google", &typo)]));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].problem, Problem::TargetTypo);
        assert!(findings[0].detail.contains("abc.dkim.amazonses.co"));
        // A typo in the token is a typo too.
        let token = cname("abd.dkim.amazonses.com", &expected);
        assert_eq!(
            problems(&evidence(&expected, vec![("g", &token)])),
            [Problem::TargetTypo]
        );
    }

    #[test]
    fn wrong_target() {
        let expected = ses();
        let other = cname("s1.domainkey.u1234.wl.sendgrid.net", &expected);
        assert_eq!(
            problems(&evidence(&expected, vec![("google", &other)])),
            [Problem::WrongTarget]
        );
    }

    #[test]
    fn wrong_region_both_ways() {
        let regional = Expected::Cname("abc.dkim.eu-south-1.amazonses.com".into());
        let global = cname("abc.dkim.amazonses.com", &regional);
        assert_eq!(
            problems(&evidence(&regional, vec![("google", &global)])),
            [Problem::WrongRegion]
        );
        let expected = ses();
        let eu = cname("abc.dkim.eu-south-1.amazonses.com", &expected);
        assert_eq!(
            problems(&evidence(&expected, vec![("google", &eu)])),
            [Problem::WrongRegion]
        );
        // Another region, one character off: still the region, not a typo.
        let eu2 = cname("abc.dkim.eu-south-2.amazonses.com", &regional);
        assert_eq!(
            problems(&evidence(&regional, vec![("google", &eu2)])),
            [Problem::WrongRegion]
        );
        // Another token under the right domain is not a region problem.
        let other = cname("xyz.dkim.amazonses.com", &expected);
        assert_eq!(
            problems(&evidence(&expected, vec![("google", &other)])),
            [Problem::WrongTarget]
        );
    }

    #[test]
    fn flattened_cname_is_not_an_a_record() {
        let expected = ses();
        let none = absent();
        let extra = Extra {
            addresses: vec!["52.94.236.248".parse().unwrap()],
            flattened: true,
            ..Extra::default()
        };
        let mut e = evidence(&expected, vec![("google", &none)]);
        e.extra = Some(&extra);
        assert_eq!(problems(&e), [Problem::Missing, Problem::CnameFlattened]);
    }

    #[test]
    fn causes_of_a_missing_record() {
        let expected = ses();
        let none = absent();
        let extra = Extra {
            addresses: vec!["52.94.236.248".parse().unwrap()],
            flattened: false,
            txt_key: true,
            doubled: Some("abc._domainkey.example.com.example.com".into()),
            without_underscore: Some("abc.domainkey.example.com".into()),
            no_domainkey: false,
        };
        let mut e = evidence(&expected, vec![("google", &none)]);
        e.extra = Some(&extra);
        let findings = diagnose(&e);
        let got: Vec<Problem> = findings.iter().map(|f| f.problem).collect();
        assert_eq!(
            got,
            [
                Problem::Missing,
                Problem::ARecord,
                Problem::TxtInsteadOfCname,
                Problem::DoubledDomain,
                Problem::MissingUnderscore
            ]
        );
        assert_eq!(
            findings[3].detail,
            "the record exists at abc._domainkey.example.com.example.com"
        );
        assert_eq!(
            findings[1].detail,
            "the name has address records 52.94.236.248"
        );
    }

    #[test]
    fn keys_at_the_end_of_a_correct_cname() {
        let expected = ses();
        let good = cname("abc.dkim.amazonses.com", &expected);
        let answers = vec![("google", &good)];
        let cases = [
            (KeyLookup::NotFound, vec![Problem::KeyMissing]),
            (
                KeyLookup::Found(Keys::one(Err(KeyError::Revoked))),
                vec![Problem::KeyInvalid],
            ),
            (
                KeyLookup::Found(Keys::one(Ok(rsa(512)))),
                vec![Problem::KeyWeak],
            ),
            (KeyLookup::Found(Keys::one(Ok(rsa(1024)))), vec![]),
            (
                KeyLookup::Found(Keys::one(Ok(DkimKey {
                    key_type: KeyType::Ed25519,
                    bits: 256,
                    flags: KeyFlags::default(),
                    fingerprint: Fingerprint([0x25; 8]),
                }))),
                vec![],
            ),
            (
                KeyLookup::Found(Keys::one(Ok(DkimKey {
                    flags: KeyFlags {
                        testing: true,
                        sha1_only: true,
                    },
                    ..rsa(1024)
                }))),
                vec![Problem::KeyTesting, Problem::KeySha1Only],
            ),
        ];
        for (key, want) in cases {
            let mut e = evidence(&expected, answers.clone());
            e.key = Some(&key);
            assert_eq!(problems(&e), want, "{key:?}");
        }
        // A wrong CNAME is not followed to a key.
        let typo = cname("abc.dkim.amazonses.co", &expected);
        let mut e = evidence(&expected, vec![("google", &typo)]);
        let not_found = KeyLookup::NotFound;
        e.key = Some(&not_found);
        assert_eq!(problems(&e), [Problem::TargetTypo]);
    }

    #[test]
    fn txt_records_carry_their_own_key() {
        let expected = Expected::Txt;
        let revoked = txt(Err(KeyError::Revoked));
        assert_eq!(
            problems(&evidence(&expected, vec![("google", &revoked)])),
            [Problem::KeyInvalid]
        );
        let weak = txt(Ok(rsa(768)));
        assert_eq!(
            problems(&evidence(&expected, vec![("google", &weak)])),
            [Problem::KeyWeak]
        );
        let good = txt(Ok(rsa(2048)));
        assert_eq!(problems(&evidence(&expected, vec![("google", &good)])), []);
    }

    fn failed(resolver: &str, reason: FailureReason, dnssec_bogus: bool) -> Failed<'_> {
        Failed {
            resolver,
            reason,
            ede: None,
            dnssec_bogus,
        }
    }

    fn walk(working: &[&str]) -> Walk {
        Walk {
            domain: "example.com".into(),
            working: working.iter().map(|w| w.to_string()).collect(),
            parent: Some("com".into()),
            delegation: crate::evidence::Delegation::To(vec![crate::evidence::Nameserver {
                host: "ns1.dead.example".into(),
                address: Some("192.0.2.1".parse().unwrap()),
                failure: Some(FailureReason::Timeout),
            }]),
        }
    }

    #[test]
    fn no_answer_but_working_resolvers_is_unresolvable_with_the_walk() {
        let expected = ses();
        let walked = walk(&["google", "quad9"]);
        let mut e = evidence(&expected, vec![]);
        e.failures = vec![
            failed("google", FailureReason::Servfail, false),
            failed("quad9", FailureReason::Timeout, false),
        ];
        e.walk = Some(&walked);
        let findings = diagnose(&e);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].problem, Problem::Unresolvable);
        assert_eq!(
            findings[0].detail,
            "google, quad9 fail on it: com delegates example.com to ns1.dead.example \
             (192.0.2.1), which does not answer"
        );
        // No resolver answers even the parent zone: the exporter's network, not the domain.
        let dark = walk(&[]);
        e.walk = Some(&dark);
        assert_eq!(problems(&e), []);
        // No walk at all: nothing known.
        e.walk = None;
        assert_eq!(problems(&e), []);
    }

    #[test]
    fn validating_resolvers_rejecting_the_zone_is_dnssec_bogus() {
        let expected = ses();
        let good = cname("abc.dkim.amazonses.com", &expected);
        let ede = Ede {
            code: 9,
            text: "no DNSKEY matches the DS".into(),
        };
        let mut e = evidence(&expected, vec![("plain", &good)]);
        e.key = Some(&*GOOD_KEY);
        e.failures = vec![
            Failed {
                ede: Some(&ede),
                ..failed("google", FailureReason::Servfail, true)
            },
            failed("quad9", FailureReason::Servfail, true),
        ];
        let findings = diagnose(&e);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].problem, Problem::DnssecBogus);
        assert_eq!(
            findings[0].detail,
            "DNSSEC validation fails on google (EDE 9 DNSKEY Missing: no DNSKEY matches the DS), \
             quad9 (answers only with checking disabled)"
        );
        // Every resolver validates: bogus, never unresolvable.
        let walked = walk(&["google", "quad9"]);
        let mut e = evidence(&expected, vec![]);
        e.failures = vec![failed("google", FailureReason::Servfail, true)];
        e.walk = Some(&walked);
        assert_eq!(problems(&e), [Problem::DnssecBogus]);
    }

    #[test]
    fn nxdomain_under_a_domain_that_does_not_exist_is_domain_not_found() {
        let expected = ses();
        let none = absent();
        let mut e = evidence(&expected, vec![("google", &none), ("quad9", &none)]);
        e.domain_exists = Some(false);
        let findings = diagnose(&e);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].problem, Problem::DomainNotFound);
        assert_eq!(
            findings[0].detail,
            "the domain itself does not exist (NXDOMAIN) on google, quad9"
        );
        // The domain exists (or is unknown): missing, naming the DNS host.
        e.domain_exists = Some(true);
        e.nameservers = vec!["ns1.example.net", "ns2.example.net"];
        let findings = diagnose(&e);
        assert_eq!(findings[0].problem, Problem::Missing);
        assert_eq!(
            findings[0].detail,
            "no record on google, quad9; the domain's DNS is served by ns1.example.net, \
             ns2.example.net"
        );
    }

    #[test]
    fn no_domainkey_at_all_says_every_dkim_record_is_gone() {
        let expected = ses();
        let none = absent();
        let extra = Extra {
            no_domainkey: true,
            ..Extra::default()
        };
        let mut e = evidence(&expected, vec![("google", &none)]);
        e.extra = Some(&extra);
        e.nameservers = vec!["ns1.example.net"];
        let findings = diagnose(&e);
        assert_eq!(problems(&e), [Problem::Missing]);
        assert_eq!(
            findings[0].detail,
            "no record on google; _domainkey.example.com does not exist (NXDOMAIN), so the \
             domain has no DKIM record at all: a zone replaced or records lost in a DNS move, \
             not one record left out; the domain's DNS is served by ns1.example.net"
        );
    }

    #[test]
    fn several_key_records_at_the_name_are_key_multiple() {
        let expected = Expected::Txt;
        let mut two = txt(Ok(rsa(2048)));
        two.key = Some(Box::new(Keys {
            key: Ok(rsa(2048)),
            more: vec![Ok(rsa(1024)), Err(KeyError::Revoked)].into(),
        }));
        let one = txt(Ok(rsa(2048)));
        // One resolver seeing both is enough.
        let findings = diagnose(&evidence(
            &expected,
            vec![("google", &one), ("quad9", &two)],
        ));
        let got: Vec<Problem> = findings.iter().map(|f| f.problem).collect();
        assert_eq!(got, [Problem::KeyMultiple]);
        assert_eq!(
            findings[0].detail,
            "the record holds 3 DKIM key records: sha256:0000000000000800 (2048-bit RSA), \
             sha256:0000000000000400 (1024-bit RSA), an unusable one (p= is empty: the key is \
             revoked); receivers pick one"
        );
        // At the end of a CNAME.
        let expected = ses();
        let good = cname("abc.dkim.amazonses.com", &expected);
        let key = KeyLookup::Found(Keys {
            key: Ok(rsa(2048)),
            more: vec![Ok(rsa(512))].into(),
        });
        let mut e = evidence(&expected, vec![("google", &good)]);
        e.key = Some(&key);
        let findings = diagnose(&e);
        assert_eq!(findings[0].problem, Problem::KeyMultiple);
        assert!(
            findings[0]
                .detail
                .starts_with("abc.dkim.amazonses.com holds 2 DKIM key records"),
            "{}",
            findings[0].detail
        );
        // One key: nothing.
        assert_eq!(
            problems(&evidence(&Expected::Txt, vec![("google", &one)])),
            []
        );
    }

    #[test]
    fn resolvers_serving_different_keys_name_the_new_and_the_old() {
        let expected = Expected::Txt;
        let (old, new) = (rsa(1024), rsa(2048));
        let serving_old = txt(Ok(old));
        let serving_new = txt(Ok(new));
        let answers = vec![
            ("google", &serving_new),
            ("quad9", &serving_old),
            ("auth:ns1.example.com", &serving_new),
        ];
        let findings = diagnose(&evidence(&expected, answers.clone()));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].problem, Problem::NotPropagated);
        assert_eq!(
            findings[0].detail,
            format!(
                "the key is being replaced: google, auth:ns1.example.com serve the new key {} \
                 (2048 bits); quad9 serves the old key {} (1024 bits)",
                new.fingerprint, old.fingerprint
            )
        );
        // Without the nameservers, the key seen before is the old one: the one replaced, or
        // else the one followed until now.
        let mut e = evidence(&expected, answers[..2].to_vec());
        e.previous_key = Some(&old);
        e.seen_key = Some(&new);
        let replaced = "the key is being replaced: google serves";
        assert!(diagnose(&e)[0].detail.starts_with(replaced));
        e.previous_key = None;
        e.seen_key = Some(&old);
        assert!(diagnose(&e)[0].detail.starts_with(replaced));
        // Nothing tells which is new: both named.
        let e = evidence(&expected, answers[..2].to_vec());
        assert_eq!(
            diagnose(&e)[0].detail,
            format!(
                "resolvers serve different keys: google serves {} (2048 bits); quad9 serves {} \
                 (1024 bits)",
                new.fingerprint, old.fingerprint
            )
        );
        // The same key everywhere: nothing.
        let e = evidence(
            &expected,
            vec![("google", &serving_new), ("quad9", &serving_new)],
        );
        assert_eq!(problems(&e), []);
    }

    #[test]
    fn signatures_expiring_within_three_days() {
        let expected = ses();
        let good = cname("abc.dkim.amazonses.com", &expected);
        let day = 86_400.0;
        // Made `made` seconds from now, expiring `expires` from now.
        let signed = |made: f64, expires: f64| Signature {
            inception: (NOW + made) as u32,
            expiration: std::num::NonZeroU32::new((NOW + expires) as u32).unwrap(),
        };
        let mut e = evidence(&expected, vec![("google", &good)]);
        e.key = Some(&*GOOD_KEY);
        e.signatures = vec![("auth:ns1.example.com", signed(-4.0 * day, 10.0 * day))];
        assert_eq!(problems(&e), []);
        // Signed an hour ago, valid for two days: a signer that signs each answer, at work.
        e.signatures = vec![("auth:ns1.example.com", signed(-3600.0, 2.0 * day))];
        assert_eq!(problems(&e), []);
        e.signatures = vec![
            ("auth:ns1.example.com", signed(-4.0 * day, 10.0 * day)),
            (
                "auth:ns2.example.com",
                signed(-12.0 * day, 2.0 * day + 5.0 * 3600.0),
            ),
        ];
        let findings = diagnose(&e);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].problem, Problem::DnssecExpiring);
        assert_eq!(
            findings[0].detail,
            "the DNSSEC signatures over the record expire within 3 days, with less than a third \
             of their validity left, and have not been renewed: auth:ns2.example.com: \
             2026-12-09T05:00:00.000Z, in 2 days 5 hours"
        );
        e.signatures = vec![("auth:ns1.example.com", signed(-14.0 * day, -3600.0))];
        assert!(
            diagnose(&e)[0]
                .detail
                .ends_with("auth:ns1.example.com: expired at 2026-12-06T23:00:00.000Z")
        );
    }

    #[test]
    fn dnssec_times_are_read_near_now() {
        assert_eq!(unix_time(NOW as u32 + 60, NOW), NOW + 60.0);
        assert_eq!(unix_time(NOW as u32 - 60, NOW), NOW - 60.0);
        // Past 2106 the field wraps; read near now, it still comes after.
        let late = 4_294_967_000.0;
        assert_eq!(unix_time((late as u64 + 1000) as u32, late), late + 1000.0);
        assert_eq!(hours_and_days(59.0 * 60.0), "under an hour");
        assert_eq!(hours_and_days(3600.0), "1 hour");
        assert_eq!(hours_and_days(2.0 * 86_400.0), "2 days");
    }
}
