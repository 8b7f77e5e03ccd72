//! The named DKIM problems: one table of every problem with its severity, what it means and how
//! to fix it.
//!
//! Diagnosis raises these, `/metrics` labels them, `check` and the landing page print their
//! fixes, the alert rules page with their severity, and the troubleshooting table of
//! docs/problems.md is [`markdown_table`] (a test fails when either drifts from this table).

use std::fmt;

/// A named DKIM failure: the `problem` label of `dkim_record_problem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Problem {
    /// No answering resolver has a record of the expected type.
    Missing,
    /// Correct on some answering resolver but absent or different on another.
    NotPropagated,
    /// A CNAME to somewhere else.
    WrongTarget,
    /// A CNAME within edit distance 2 of the expected target.
    TargetTypo,
    /// The expected SES token under another SES DKIM domain.
    WrongRegion,
    /// A/AAAA records where the CNAME should be.
    ARecord,
    /// A/AAAA records equal to the expected target's: the DNS host flattens the CNAME.
    CnameFlattened,
    /// A TXT key where a CNAME is expected.
    TxtInsteadOfCname,
    /// The record exists with the domain appended twice.
    DoubledDomain,
    /// The record exists under `domainkey` without the underscore.
    MissingUnderscore,
    /// The domain itself does not exist.
    DomainNotFound,
    /// Working resolvers cannot resolve the record: the domain's DNS is broken.
    Unresolvable,
    /// Validating resolvers reject the zone's DNSSEC signatures.
    DnssecBogus,
    /// The record is correct but leads to no DKIM key.
    KeyMissing,
    /// The key record does not parse, is revoked, or holds an unreadable key.
    KeyInvalid,
    /// An RSA key under 1024 bits.
    KeyWeak,
    /// The key record has `t=y`.
    KeyTesting,
    /// The key record allows only `h=sha1`.
    KeySha1Only,
    /// The name holds more than one DKIM key record.
    KeyMultiple,
    /// The record's DNSSEC signatures on its nameservers expire within 3 days.
    DnssecExpiring,
    /// Receivers report that the selector's signatures fail (DMARC aggregate reports).
    FailingAtReceivers,
}

/// How urgent a problem is: the `severity` label of its alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Mail is, or is about to be, unsigned: page someone.
    Critical,
    /// Something to look at within the day.
    Warning,
    /// Worth knowing; nothing breaks yet.
    Info,
}

impl Severity {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One row of a table of problems: [`TABLE`], and the SES problems'.
#[derive(Debug, Clone, Copy)]
pub struct Entry<P = Problem> {
    /// The problem.
    pub problem: P,
    /// The label value.
    pub name: &'static str,
    /// The severity of its alert.
    pub severity: Severity,
    /// When it holds, for people (Markdown).
    pub meaning: &'static str,
    /// What to do about it, in plain words.
    pub fix: &'static str,
}

/// Every problem, in the contract's order (and the order of [`Problem`]'s variants).
pub const TABLE: [Entry; 21] = [
    Entry {
        problem: Problem::Missing,
        name: "missing",
        severity: Severity::Critical,
        meaning: "No resolver that answered has a record of the expected type at \
                  `{selector}._domainkey.{domain}`. A resolver that timed out or failed does not \
                  count. The detail names the domain's nameservers: its DNS host. When \
                  `_domainkey.{domain}` itself does not exist (NXDOMAIN: nothing below it does, \
                  RFC 8020), the detail says the domain has no DKIM record at all: a zone \
                  replaced, or records lost in a DNS move.",
        fix: "Add the record exactly as the provider shows it, at the domain's DNS host (the \
              nameservers the detail names).",
    },
    Entry {
        problem: Problem::NotPropagated,
        name: "not_propagated",
        severity: Severity::Warning,
        meaning: "The record is correct on some resolver or nameserver, and absent or different on \
                  another. `dkim_record_ttl_seconds` says how long caches may keep the old answer; \
                  the `auth:` resolvers show which nameserver serves what.",
        fix: "Wait for TTLs to expire; if it lasts, a nameserver is not serving the current zone.",
    },
    Entry {
        problem: Problem::WrongTarget,
        name: "wrong_target",
        severity: Severity::Critical,
        meaning: "The CNAME points somewhere else.",
        fix: "Point the CNAME at the expected target.",
    },
    Entry {
        problem: Problem::TargetTypo,
        name: "target_typo",
        severity: Severity::Critical,
        meaning: "The CNAME target is within two characters of the expected one \
                  (`…dkim.amazonses.co`).",
        fix: "Fix the spelling of the CNAME target.",
    },
    Entry {
        problem: Problem::WrongRegion,
        name: "wrong_region",
        severity: Severity::Critical,
        meaning: "The CNAME has the right SES token under the other SES DKIM domain (global \
                  `dkim.amazonses.com` vs regional `dkim.{region}.amazonses.com`).",
        fix: "Use the target for the identity's SES region.",
    },
    Entry {
        problem: Problem::ARecord,
        name: "a_record",
        severity: Severity::Critical,
        meaning: "The name holds A/AAAA records (often the addresses the target resolved to) \
                  instead of the CNAME.",
        fix: "DKIM needs a CNAME to the hostname, never an A record to its addresses: delete the \
              A/AAAA records and add the CNAME.",
    },
    Entry {
        problem: Problem::CnameFlattened,
        name: "cname_flattened",
        severity: Severity::Critical,
        meaning: "The name holds A/AAAA records equal to the addresses of the expected target, \
                  through the same resolver: the DNS host flattens the CNAME (Cloudflare's \
                  \"flatten all CNAMEs\" does), so the CNAME the provider checks for is not \
                  there.",
        fix: "Turn CNAME flattening off for this record at the DNS host.",
    },
    Entry {
        problem: Problem::TxtInsteadOfCname,
        name: "txt_instead_of_cname",
        severity: Severity::Critical,
        meaning: "A DKIM key was pasted as TXT where the provider expects a CNAME.",
        fix: "Publish the CNAME instead of the TXT key, so the provider can rotate keys.",
    },
    Entry {
        problem: Problem::DoubledDomain,
        name: "doubled_domain",
        severity: Severity::Critical,
        meaning: "The record is missing, but exists at `{selector}._domainkey.{domain}.{domain}`.",
        fix: "The DNS provider appended the domain: re-enter the name with a trailing dot, or \
              without the domain.",
    },
    Entry {
        problem: Problem::MissingUnderscore,
        name: "missing_underscore",
        severity: Severity::Critical,
        meaning: "The record is missing, but exists at `{selector}.domainkey.{domain}`.",
        fix: "The underscore in _domainkey is required (RFC 6376); if the DNS provider refuses \
              it, move DNS or delegate a subdomain.",
    },
    Entry {
        problem: Problem::DomainNotFound,
        name: "domain_not_found",
        severity: Severity::Critical,
        meaning: "Every resolver that answered says the domain itself does not exist (NXDOMAIN at \
                  the domain, not only at the record).",
        fix: "The domain is not registered, has expired, or is misspelt in the config.",
    },
    Entry {
        problem: Problem::Unresolvable,
        name: "unresolvable",
        severity: Severity::Critical,
        meaning: "Resolvers that work (they answer for other domains, or for the parent zone) fail \
                  on the record with SERVFAIL or timeouts, so receivers cannot fetch the key \
                  either. The detail says what walking the delegation found: nameservers that do \
                  not answer, that answer REFUSED or without authority (lame), or a domain the \
                  parent zone does not know.",
        fix: "The domain's DNS is broken: fix the NS records at the registrar, or the \
              nameservers they name, as the detail says.",
    },
    Entry {
        problem: Problem::DnssecBogus,
        name: "dnssec_bogus",
        severity: Severity::Critical,
        meaning: "Validating resolvers reject the answer: SERVFAIL with an Extended DNS Error of \
                  the DNSSEC kind, or an answer only with checking disabled. Receivers that \
                  validate (Gmail among them) cannot fetch the key, even if other resolvers \
                  answer.",
        fix: "The DS at the registrar does not match the zone's keys, or the signatures \
              expired: re-sign the zone, or update or remove the DS (common after moving DNS \
              providers).",
    },
    Entry {
        problem: Problem::KeyMissing,
        name: "key_missing",
        severity: Severity::Critical,
        meaning: "The record is correct, but no DKIM key record is found at the end of it.",
        fix: "The target publishes no DKIM key: check the selector and the provider's setup.",
    },
    Entry {
        problem: Problem::KeyInvalid,
        name: "key_invalid",
        severity: Severity::Critical,
        meaning: "The key record does not parse, has an empty `p=` (revoked), or holds an \
                  unreadable key.",
        fix: "Republish the key as the provider gives it.",
    },
    Entry {
        problem: Problem::KeyWeak,
        name: "key_weak",
        severity: Severity::Info,
        meaning: "An RSA key under 1024 bits.",
        fix: "Rotate to a 2048-bit key.",
    },
    Entry {
        problem: Problem::KeyTesting,
        name: "key_testing",
        severity: Severity::Warning,
        meaning: "The key record has `t=y`: the domain says it is testing DKIM, and receivers \
                  treat its signatures as if the mail were unsigned (RFC 6376 section 3.6.1).",
        fix: "Remove t=y from the key record when testing is over.",
    },
    Entry {
        problem: Problem::KeySha1Only,
        name: "key_sha1_only",
        severity: Severity::Critical,
        meaning: "The key record's `h=` allows only sha1, which RFC 8301 forbids verifiers to \
                  accept: no signature made with this key verifies.",
        fix: "Publish the key without h=, or with h=sha256, and sign with rsa-sha256.",
    },
    Entry {
        problem: Problem::KeyMultiple,
        name: "key_multiple",
        severity: Severity::Critical,
        meaning: "The name (or the end of its CNAME chain) holds more than one DKIM key record. \
                  Receivers pick one (RFC 6376 section 3.6.2.2 leaves it to them), so mail \
                  signed with the other key fails some of the time. The detail gives each key's \
                  fingerprint and size. A TXT record that is not a key record (SPF, a \
                  verification token) beside the key is not this problem.",
        fix: "Keep exactly one key record per selector: delete the one mail is not signed with.",
    },
    Entry {
        problem: Problem::DnssecExpiring,
        name: "dnssec_expiring",
        severity: Severity::Warning,
        meaning: "The zone is signed, and the RRSIGs over the record on its own nameservers \
                  expire within 3 days with less than a third of their validity period left: the \
                  signer has stopped re-signing. Once they expire, validating receivers reject \
                  the key (then `dnssec_bogus`). Signatures made moments ago that are valid for \
                  a day or two (servers that sign each answer) are not this problem. \
                  `dkim_record_signature_expiry_timestamp_seconds` gives the time.",
        fix: "The zone is not being re-signed: check the signer (or the DNS host's DNSSEC) now.",
    },
    Entry {
        problem: Problem::FailingAtReceivers,
        name: "failing_at_receivers",
        severity: Severity::Critical,
        meaning: "Receivers' DMARC aggregate reports say `fail` or `permerror` for more than \
                  `dmarc.fail_share` of the selector's signatures, over at least \
                  `dmarc.min_messages` in the window. The detail names the reporters and their \
                  counts, and says when DNS itself serves a usable key.",
        fix: "The key in DNS is not the key mail is signed with (a rotation half done, a record \
              pointing at another account's key), or mail is changed after signing: compare the \
              key the provider signs with to the one DNS serves.",
    },
];

impl Problem {
    /// Every problem, in the contract's order.
    pub const ALL: [Problem; TABLE.len()] = {
        let mut all = [Problem::Missing; TABLE.len()];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].problem;
            i += 1;
        }
        all
    };

    /// The problem's row of [`TABLE`].
    pub fn entry(self) -> &'static Entry {
        // The table lists the variants in declaration order (a test holds it to that).
        &TABLE[self as usize]
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        self.entry().name
    }

    /// What to do about it, in plain words.
    pub fn fix(self) -> &'static str {
        self.entry().fix
    }

    /// How urgent it is.
    pub fn severity(self) -> Severity {
        self.entry().severity
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl crate::changes::Named for Problem {
    fn name(self) -> &'static str {
        self.as_str()
    }

    fn fix(self) -> &'static str {
        Problem::fix(self)
    }
}

/// The troubleshooting table of docs/problems.md, written from [`TABLE`].
pub fn markdown_table() -> String {
    markdown_table_of(TABLE.iter().map(|e| (e.name, e.severity, e.meaning, e.fix)))
}

/// A Markdown table of problems: name, severity, meaning, fix.
pub fn markdown_table_of<'a>(
    rows: impl Iterator<Item = (&'a str, Severity, &'a str, &'a str)>,
) -> String {
    let mut out =
        String::from("| problem | severity | what it means | what to do |\n|---|---|---|---|\n");
    for (name, severity, meaning, fix) in rows {
        out.push_str(&format!(
            "| `{name}` | {} | {meaning} | {fix} |\n",
            severity.as_str()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_the_variants() {
        for (i, entry) in TABLE.iter().enumerate() {
            assert_eq!(entry.problem as usize, i, "{}", entry.name);
            assert_eq!(Problem::ALL[i], entry.problem);
        }
        assert_eq!(Problem::KeyWeak.as_str(), "key_weak");
        assert_eq!(Problem::NotPropagated.severity(), Severity::Warning);
    }

    #[test]
    fn names_are_label_values() {
        for entry in &TABLE {
            assert!(
                entry
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                entry.name
            );
            assert!(!entry.fix.is_empty() && !entry.meaning.is_empty());
        }
    }
}
