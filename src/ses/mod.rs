//! Amazon SES: the domain identities of an account and region, discovered through the SESv2
//! API, with SES's own view of their DKIM beside what DNS serves.
//!
//! - `client`: the AWS SDK client of a `ses:` source (credentials, role, endpoint, retries);
//! - `discover`: listing a source's domain identities and reading each one's DKIM attributes;
//! - `records`: the identities' tokens as records to check, merged into the file's;
//! - `problem`: the SES problems, and how SES's status and the records' DNS verdicts combine;
//! - `watch`: the daemon's task per source, what it logs, and the log of SES problems.
//!
//! What discovery finds becomes records to check and the `dkim_ses_*` series; a listing that
//! fails keeps the identities of the last good one. This folder is the model of an outside
//! source: it reads the records' model and the state, and neither knows of it.

pub mod client;
pub mod discover;
pub mod problem;
pub mod records;
pub mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::SesSource;
use crate::provider::{Expected, ses};
pub use discover::Listing;

/// SES's DKIM status of an identity: the `status` label of `dkim_ses_identity_dkim_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DkimStatus {
    /// SES has not found the records yet and is still looking (up to 72 hours).
    Pending,
    /// SES found the records: mail is signed.
    Success,
    /// SES gave up after 72 hours without the records: signing stopped.
    Failed,
    /// SES could not find the records at its latest check.
    TemporaryFailure,
    /// DKIM verification has not started.
    NotStarted,
}

impl DkimStatus {
    /// Every status, in the order the metric lists them.
    pub const ALL: [DkimStatus; 5] = [
        DkimStatus::Pending,
        DkimStatus::Success,
        DkimStatus::Failed,
        DkimStatus::TemporaryFailure,
        DkimStatus::NotStarted,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimStatus::Pending => "pending",
            DkimStatus::Success => "success",
            DkimStatus::Failed => "failed",
            DkimStatus::TemporaryFailure => "temporary_failure",
            DkimStatus::NotStarted => "not_started",
        }
    }

    /// The status the API names `text` (`PENDING`, `TEMPORARY_FAILURE`, …).
    pub fn from_api(text: &str) -> Option<DkimStatus> {
        let lower = text.to_ascii_lowercase();
        DkimStatus::ALL.into_iter().find(|s| s.as_str() == lower)
    }
}

/// Where the identity's DKIM keys come from: SES's `SigningAttributesOrigin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Easy DKIM: the tokens are selectors whose records are CNAMEs to SES's DKIM domain of
    /// `region` (the source's region, or the one a regional origin such as
    /// `AWS_SES_EU_SOUTH_1` names).
    Ses {
        /// The region whose DKIM domain the tokens point at.
        region: String,
    },
    /// Bring your own DKIM (`EXTERNAL`): the token is the selector of a TXT key.
    External,
}

impl Origin {
    /// The origin the API names `text`, for an identity of a source in `region`.
    pub fn from_api(text: Option<&str>, region: &str) -> Origin {
        match text {
            Some("EXTERNAL") => Origin::External,
            Some(text) => match text.strip_prefix("AWS_SES_") {
                Some(regional) => Origin::Ses {
                    region: regional.to_ascii_lowercase().replace('_', "-"),
                },
                None => Origin::Ses {
                    region: region.to_string(),
                },
            },
            None => Origin::Ses {
                region: region.to_string(),
            },
        }
    }
}

/// One domain identity as SES describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The domain, lower case without the trailing dot.
    pub domain: String,
    /// SES's DKIM status; `None` when SES reports one this version does not know.
    pub status: Option<DkimStatus>,
    /// Whether SES signs the identity's mail with its DKIM keys.
    pub signing_enabled: bool,
    /// The current signing key length in bits, when SES says.
    pub key_length: Option<u32>,
    /// Unix time at which SES last generated the identity's key, when it says.
    pub last_key_generation: Option<f64>,
    /// Where the keys come from.
    pub origin: Origin,
    /// The DKIM tokens, lower case: the selectors of the records SES expects.
    pub tokens: Vec<String>,
}

impl Identity {
    /// What the record of `token` should hold.
    pub fn expected(&self, token: &str) -> Expected {
        match &self.origin {
            Origin::Ses { region } => {
                Expected::Cname(ses::target(token, &ses::dkim_domain(Some(region))).into())
            }
            Origin::External => Expected::Txt,
        }
    }
}

/// What is known of one source: the identities of its latest good listing, and how the
/// latest listing went.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The source, as configured.
    pub source: Arc<SesSource>,
    /// The identities of the latest good listing, sorted by domain.
    pub identities: Vec<Identity>,
    /// Whether the latest listing succeeded; `None` before the first one ended.
    pub success: Option<bool>,
    /// Unix time of the end of the latest good listing.
    pub last_success: Option<f64>,
    /// Unix time at which each identity was first seen PENDING, while it stays so.
    pub pending_since: HashMap<String, f64>,
}

impl Discovered {
    /// A source not listed yet.
    pub fn new(source: Arc<SesSource>) -> Discovered {
        Discovered {
            source,
            identities: Vec::new(),
            success: None,
            last_success: None,
            pending_since: HashMap::new(),
        }
    }

    /// Takes in a listing that ended at `now`: on success its identities replace the old ones
    /// (an identity that stays PENDING keeps the time it was first seen so, and one that could
    /// not be read keeps its previous reading); on failure the old ones stay. The listing
    /// succeeded when every identity was read.
    pub fn update(&mut self, listing: Result<Listing, String>, now: f64) {
        match listing {
            Ok(Listing {
                mut identities,
                unread,
            }) => {
                for (domain, _) in &unread {
                    if let Some(old) = self.identity(domain) {
                        identities.push(old.clone());
                    }
                }
                identities.sort_by(|a, b| a.domain.cmp(&b.domain));
                identities.dedup_by(|a, b| a.domain == b.domain);
                let old = std::mem::take(&mut self.pending_since);
                self.pending_since = identities
                    .iter()
                    .filter(|i| i.status == Some(DkimStatus::Pending))
                    .map(|i| {
                        let since = old.get(&i.domain).copied().unwrap_or(now);
                        (i.domain.clone(), since)
                    })
                    .collect();
                self.identities = identities;
                self.success = Some(unread.is_empty());
                if unread.is_empty() {
                    self.last_success = Some(now);
                }
            }
            Err(_) => self.success = Some(false),
        }
    }

    /// The identity of `domain`.
    pub fn identity(&self, domain: &str) -> Option<&Identity> {
        self.identities
            .binary_search_by(|i| i.domain.as_str().cmp(domain))
            .ok()
            .map(|i| &self.identities[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            Origin::from_api(Some("AWS_SES"), "us-east-1"),
            Origin::Ses {
                region: "us-east-1".into()
            }
        );
        assert_eq!(
            Origin::from_api(Some("AWS_SES_EU_SOUTH_1"), "eu-west-1"),
            Origin::Ses {
                region: "eu-south-1".into()
            }
        );
        assert_eq!(
            Origin::from_api(Some("EXTERNAL"), "eu-west-1"),
            Origin::External
        );
    }

    #[test]
    fn regional_origins_point_at_their_dkim_domain() {
        let identity = Identity {
            domain: "example.com".into(),
            status: Some(DkimStatus::Success),
            signing_enabled: true,
            key_length: Some(2048),
            last_key_generation: None,
            origin: Origin::from_api(Some("AWS_SES_EU_SOUTH_1"), "us-east-1"),
            tokens: vec!["abc".into()],
        };
        assert_eq!(
            identity.expected("abc"),
            Expected::Cname("abc.dkim.eu-south-1.amazonses.com".into())
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(
            DkimStatus::from_api("TEMPORARY_FAILURE"),
            Some(DkimStatus::TemporaryFailure)
        );
        assert_eq!(DkimStatus::from_api("NEW_THING"), None);
    }
}
