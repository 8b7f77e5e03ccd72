//! The records of the identities discovered from Amazon SES, merged into the file's.

use std::collections::HashMap;
use std::sync::Arc;

use super::Discovered;
use crate::records::{Domain, Record, Records};

/// The file's records with every discovered identity's tokens added: a domain in both keeps
/// the file's records, and gets the tokens the file does not list; a selector two sources
/// both discover is checked once, as the first source expects it. Domains only SES knows
/// follow the file's, by source then domain.
pub fn merge(file: &Records, discovered: &[Discovered]) -> Records {
    let mut records = file.clone();
    let mut index: HashMap<String, usize> = records
        .domains
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.clone(), i))
        .collect();
    for source in discovered {
        let name: Arc<str> = Arc::from(source.source.name.as_str());
        for identity in &source.identities {
            let i = *index.entry(identity.domain.clone()).or_insert_with(|| {
                records.domains.push(Domain {
                    name: identity.domain.clone(),
                    records: Vec::new(),
                    rotating_pair: None,
                });
                records.domains.len() - 1
            });
            let domain = &mut records.domains[i];
            for token in &identity.tokens {
                if domain.records.iter().any(|r| &r.selector == token) {
                    continue;
                }
                domain.records.push(Record {
                    selector: token.clone(),
                    expected: identity.expected(token),
                    from_ses: Some(name.clone()),
                    from_dmarc: false,
                });
            }
        }
    }
    // An identity without tokens (DKIM not set up) has no record to check.
    records.domains.retain(|d| !d.records.is_empty());
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::provider::Expected;
    use crate::ses::{DkimStatus, Identity, Origin};

    fn source(name: &str, region: &str, identities: Vec<(&str, &[&str])>) -> Discovered {
        let config = config::parse(
            &format!("ses:\n- name: {name}\n  region: {region}\n"),
            "test.yaml",
        )
        .unwrap();
        let mut discovered = Discovered::new(Arc::new(config.config.ses[0].clone()));
        discovered.identities = identities
            .into_iter()
            .map(|(domain, tokens)| Identity {
                domain: domain.into(),
                status: Some(DkimStatus::Success),
                signing_enabled: true,
                key_length: None,
                last_key_generation: None,
                origin: Origin::Ses {
                    region: region.into(),
                },
                tokens: tokens.iter().map(|t| t.to_string()).collect(),
            })
            .collect();
        discovered
    }

    #[test]
    fn the_file_wins_and_tokens_are_added_once() {
        let file = config::parse(
            "domains:\n- domain: example.com\n  records:\n  - selector: tok1\n    cname: elsewhere.example.net\n",
            "test.yaml",
        )
        .unwrap()
        .records;
        let merged = merge(
            &file,
            &[
                source(
                    "prod",
                    "eu-south-1",
                    vec![("example.com", &["tok1", "tok2"]), ("only.example", &["x"])],
                ),
                source(
                    "other",
                    "us-east-1",
                    vec![("example.com", &["tok2", "tok3"])],
                ),
                source("empty", "us-east-1", vec![("nodkim.example", &[])]),
            ],
        );
        let seen: Vec<(&str, &str, Option<&str>, &Expected)> = merged
            .domains
            .iter()
            .flat_map(|d| {
                d.records.iter().map(move |r| {
                    (
                        d.name.as_str(),
                        r.selector.as_str(),
                        r.from_ses.as_deref(),
                        &r.expected,
                    )
                })
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "example.com",
                    "tok1",
                    None,
                    &Expected::Cname("elsewhere.example.net".into())
                ),
                (
                    "example.com",
                    "tok2",
                    Some("prod"),
                    &Expected::Cname("tok2.dkim.eu-south-1.amazonses.com".into())
                ),
                (
                    "example.com",
                    "tok3",
                    Some("other"),
                    &Expected::Cname("tok3.dkim.amazonses.com".into())
                ),
                (
                    "only.example",
                    "x",
                    Some("prod"),
                    &Expected::Cname("x.dkim.eu-south-1.amazonses.com".into())
                ),
            ]
        );
    }
}
