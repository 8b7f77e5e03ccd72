//! The record a person pastes to fix a problem: in a zone file, in a DNS host's web form (the
//! name relative to the domain, the type, the value), and where (the domain's nameservers).

use serde::Serialize;

use crate::problem::Problem;
use crate::provider::Expected;
use crate::records::record_name;

/// The TTL written in the zone-file line.
pub const PASTE_TTL: u32 = 300;

/// The value shown for a TXT key record, which only the sender has.
pub const TXT_KEY_VALUE: &str = "v=DKIM1; k=rsa; p=<the public key your provider gives you>";

/// The record to publish, in the forms people paste.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Paste {
    /// A zone-file line, names with their trailing dots.
    pub zone_file: String,
    /// The full name, without the trailing dot.
    pub name: String,
    /// The name as a DNS host's form wants it: relative to the domain.
    pub host_form_name: String,
    /// `CNAME` or `TXT`.
    pub record_type: &'static str,
    /// The value to enter.
    pub value: String,
    /// The domain's nameservers, where the record goes; empty when not known.
    pub nameservers: Vec<String>,
}

impl Paste {
    /// The record of `selector` under `domain` expected to hold `expected`, for `problem`;
    /// `None` for a problem no record fixes (a key, a resolver, the domain's DNS itself).
    pub fn for_problem(
        problem: Problem,
        selector: &str,
        domain: &str,
        expected: &Expected,
        nameservers: &[&str],
    ) -> Option<Paste> {
        if !fixed_by_publishing(problem) {
            return None;
        }
        let name = record_name(selector, domain);
        let (record_type, value, zone_value) = match expected {
            Expected::Cname(target) => ("CNAME", target.to_string(), format!("{target}.")),
            Expected::Txt => (
                "TXT",
                TXT_KEY_VALUE.to_string(),
                format!("\"{TXT_KEY_VALUE}\""),
            ),
        };
        Some(Paste {
            zone_file: format!("{name}. {PASTE_TTL} IN {record_type} {zone_value}"),
            host_form_name: format!("{selector}._domainkey"),
            name,
            record_type,
            value,
            nameservers: nameservers.iter().map(|n| n.to_string()).collect(),
        })
    }

    /// Where to add it, in words: the nameservers, or the domain's DNS host.
    pub fn place(&self) -> String {
        if self.nameservers.is_empty() {
            "at the domain's DNS host".to_string()
        } else {
            format!(
                "your DNS is served by {}: add it there",
                self.nameservers.join(", ")
            )
        }
    }
}

/// Problems a DNS change at the domain's host fixes, by publishing the expected record.
fn fixed_by_publishing(problem: Problem) -> bool {
    matches!(
        problem,
        Problem::Missing
            | Problem::WrongTarget
            | Problem::TargetTypo
            | Problem::WrongRegion
            | Problem::ARecord
            | Problem::CnameFlattened
            | Problem::TxtInsteadOfCname
            | Problem::DoubledDomain
            | Problem::MissingUnderscore
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cname_in_three_forms() {
        let paste = Paste::for_problem(
            Problem::Missing,
            "sel",
            "example.com",
            &Expected::Cname("sel.dkim.amazonses.com".into()),
            &["ns-1.awsdns-01.org", "ns-2.awsdns-02.com"],
        )
        .unwrap();
        assert_eq!(
            paste.zone_file,
            "sel._domainkey.example.com. 300 IN CNAME sel.dkim.amazonses.com."
        );
        assert_eq!(paste.host_form_name, "sel._domainkey");
        assert_eq!(paste.value, "sel.dkim.amazonses.com");
        assert_eq!(
            paste.place(),
            "your DNS is served by ns-1.awsdns-01.org, ns-2.awsdns-02.com: add it there"
        );
        assert!(
            Paste::for_problem(Problem::KeyWeak, "s", "example.com", &Expected::Txt, &[]).is_none()
        );
    }
}
