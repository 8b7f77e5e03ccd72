//! The records to check: every domain and its DKIM records, whatever declares them.
//!
//! This is the one model of a record. Every source produces it: the config file's `domains:`
//! (`config`), the domain and selectors of `dkim_exporter check` or `/probe`
//! (`config::request`), and the tokens of the identities discovered from Amazon SES
//! (`ses::records`, merged into the file's). The scheduler, the state and `/probe` all take
//! this one type; `shard` picks one replica's share of it. This module imports none of them.

pub mod shard;

use std::sync::Arc;

use crate::provider::{Expected, Provider};

/// Every record to check, grouped by domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    /// The domains, in the order their source lists them.
    pub domains: Vec<Domain>,
}

/// One domain and the DKIM records expected under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Lower-case domain name without the trailing dot.
    pub name: String,
    /// The records, in source order; never two with one selector.
    pub records: Vec<Record>,
    /// Two selectors of which only one holds a key at a time (a preset's rotating pair).
    pub rotating_pair: Option<(String, String)>,
}

/// One DKIM record: `{selector}._domainkey.{domain}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Lower-case selector (one or more labels).
    pub selector: String,
    /// What the record should hold.
    pub expected: Expected,
    /// The `ses:` source it was discovered from; `None` for the config file or a request.
    pub from_ses: Option<Arc<str>>,
    /// Checked because receivers' DMARC reports name it, not because a source lists it.
    pub from_dmarc: bool,
}

/// What joins a selector and its domain in a record's name.
pub const DOMAINKEY: &str = "._domainkey.";

/// The DNS name of the record of `selector` under `domain`, lower case without the trailing dot:
/// the key by which results find their record.
pub fn record_name(selector: &str, domain: &str) -> String {
    format!("{selector}{DOMAINKEY}{domain}")
}

/// The ways a record name splits into a selector and a domain, shortest selector first: more
/// than one only when a selector of several labels holds `._domainkey.` itself.
///
/// Every result of a round finds its record through this, so it scans for dots rather than
/// setting up a substring search per name.
pub fn split_record_name(name: &str) -> impl Iterator<Item = (&str, &str)> {
    name.bytes()
        .enumerate()
        // A dot is ASCII, so the name splits on a character boundary there.
        .filter(move |&(at, byte)| byte == b'.' && name[at..].starts_with(DOMAINKEY))
        .map(move |(at, _)| (&name[..at], &name[at + DOMAINKEY.len()..]))
}

impl Domain {
    /// The domain `name` with `records`, and the rotating pair among them when `provider` has one.
    pub fn new(name: String, records: Vec<Record>, provider: Option<Provider>) -> Domain {
        let rotating_pair =
            Provider::rotating_pair_among(provider, records.iter().map(|r| r.selector.as_str()));
        Domain {
            name,
            records,
            rotating_pair,
        }
    }
}

impl Record {
    /// The DNS name of the record under `domain`.
    pub fn name(&self, domain: &str) -> String {
        record_name(&self.selector, domain)
    }
}

impl Records {
    /// Number of records across all domains.
    pub fn record_count(&self) -> usize {
        self.domains.iter().map(|d| d.records.len()).sum()
    }

    /// The domain called `name` (lower case, no trailing dot).
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.iter().find(|d| d.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_split_at_each_domainkey_label() {
        let splits = |name| split_record_name(name).collect::<Vec<_>>();
        assert_eq!(splits("s1._domainkey.example.com"), [("s1", "example.com")]);
        assert_eq!(
            splits("a._domainkey.b._domainkey.example.com"),
            [
                ("a", "b._domainkey.example.com"),
                ("a._domainkey.b", "example.com")
            ]
        );
        assert_eq!(splits("é._domainkey.exämple"), [("é", "exämple")]);
        assert!(splits("s1.domainkey.example.com").is_empty());
        assert!(splits("s1._domainkey").is_empty());
        assert_eq!(
            record_name("s1", "example.com"),
            "s1._domainkey.example.com"
        );
    }
}
