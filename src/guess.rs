//! `dkim_exporter check DOMAIN --discover`: which of the common DKIM selectors a domain
//! publishes, and which provider each looks like. One resolver, one query at a time, within
//! its politeness limit. SES tokens are random and cannot be found this way.

use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;

use crate::check::read_key;
use crate::evidence::{KeyLookup, Keys};
use crate::provider::Provider;
use crate::records::record_name;
use crate::resolver::ResolverClient;
use crate::resolver::message::cname_at;

/// The selectors tried: every preset's own, then the ones senders commonly use.
pub const COMMON_SELECTORS: &[&str] = &[
    "s1",
    "s2",
    "selector1",
    "selector2",
    "k1",
    "k2",
    "k3",
    "mte1",
    "mte2",
    "brevo1",
    "brevo2",
    "google",
    "default",
    "dkim",
    "dkim1",
    "dkim2",
    "mail",
    "email",
    "smtp",
    "mx",
    "key1",
    "key2",
    "sig1",
    "pm",
    "cm",
    "mandrill",
    "everlytickey1",
    "everlytickey2",
    "zendesk1",
    "zendesk2",
    "protonmail",
    "protonmail2",
    "protonmail3",
    "fm1",
    "fm2",
    "fm3",
];

/// What the search found.
#[derive(Debug, Clone, Serialize)]
pub struct Search {
    /// The domain searched.
    pub domain: String,
    /// The resolver asked.
    pub resolver: String,
    /// How many selectors were tried.
    pub tried: usize,
    /// Lookups that got no definitive answer (those selectors are unknown, not absent).
    pub failed: usize,
    /// The selectors found.
    pub found: Vec<Found>,
    /// What the search cannot find.
    pub note: &'static str,
}

/// One selector that exists.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The selector.
    pub selector: String,
    /// `{selector}._domainkey.{domain}`.
    pub name: String,
    /// `cname` or `txt`.
    pub record_type: &'static str,
    /// The CNAME target, or the key's description.
    pub value: String,
    /// The preset it looks like, if any.
    pub provider: Option<&'static str>,
}

/// Why SES tokens are not among what is found.
pub const SES_NOTE: &str = "Amazon SES tokens are random and cannot be guessed: list them with \
                            ses: discovery in the config, or check --ses-region";

/// Tries every selector of [`COMMON_SELECTORS`] under `domain` through `resolver`.
pub async fn search(resolver: &ResolverClient, domain: &str) -> Search {
    let mut search = Search {
        domain: domain.to_string(),
        resolver: resolver.name.clone(),
        tried: COMMON_SELECTORS.len(),
        failed: 0,
        found: Vec::new(),
        note: SES_NOTE,
    };
    for selector in COMMON_SELECTORS {
        let name = record_name(selector, domain);
        let Ok(owner) = Name::from_ascii(format!("{name}.")) else {
            continue;
        };
        let cname = match resolver.query(&owner, RecordType::CNAME).await {
            Ok(reply) => cname_at(&reply, &owner),
            Err(_) => {
                search.failed += 1;
                continue;
            }
        };
        let found = match cname {
            Some((target, _)) => Some(Found {
                selector: (*selector).to_string(),
                name,
                record_type: "cname",
                provider: Provider::recognise(&target).map(Provider::name),
                value: target,
            }),
            None => match resolver.query(&owner, RecordType::TXT).await {
                // One reading of the reply: no key-like TXT there means no key record.
                Ok(reply) => {
                    let value = match read_key(&owner, &reply) {
                        KeyLookup::NotFound => None,
                        KeyLookup::Found(Keys { key: Ok(key), .. }) => {
                            Some(format!("DKIM key, {} bits", key.bits))
                        }
                        KeyLookup::Found(Keys { key: Err(e), .. }) => {
                            Some(format!("DKIM key record that is not usable: {e}"))
                        }
                    };
                    value.map(|value| Found {
                        selector: (*selector).to_string(),
                        name,
                        record_type: "txt",
                        value,
                        provider: (*selector == "google").then_some(Provider::Google.name()),
                    })
                }
                Err(_) => {
                    search.failed += 1;
                    None
                }
            },
        };
        search.found.extend(found);
    }
    search
}

impl Search {
    /// The search for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}: tried {} common selectors on {}\n",
            self.domain, self.tried, self.resolver
        );
        for found in &self.found {
            let provider = found
                .provider
                .map(|p| format!("  (looks like {p})"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  found {}  {} {}{provider}\n",
                found.name,
                found.record_type.to_ascii_uppercase(),
                found.value
            ));
        }
        if self.found.is_empty() {
            out.push_str("  none of them exists\n");
        }
        if self.failed > 0 {
            out.push_str(&format!(
                "  {} lookups failed: those selectors are unknown, not absent\n",
                self.failed
            ));
        }
        out.push_str(&format!("  {}\n", self.note));
        out
    }
}
