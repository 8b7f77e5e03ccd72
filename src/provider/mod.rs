//! DKIM providers: what a record is expected to hold, and what a wrong CNAME target means.
//!
//! A provider knows the CNAME target its selectors point at (for SES,
//! `{selector}.dkim.amazonses.com`, or a regional DKIM domain), and can tell a target that is
//! wrong in a way particular to it (an SES token under another region's DKIM domain) from a
//! typo or a target that is simply somewhere else. SES, which has regions and DKIM domains, is
//! a file of this folder (`ses.rs`); every other preset is a function of `presets.rs`; each is
//! registered in [`Provider`].

pub mod presets;
pub mod ses;

use std::sync::Arc;

use crate::problem::Problem;

/// What a record should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A CNAME to this target (lower case, no trailing dot). Shared: the config, the state
    /// and the round's work hold the same string, and so does every resolver's view of the
    /// record while it points there.
    Cname(Arc<str>),
    /// A DKIM key published directly as TXT.
    Txt,
}

/// Why a provider cannot say what a record should hold. The config file blames a missing
/// parameter on the domain entry and an unknown selector on the selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpectedError {
    /// The domain lacks a parameter the provider needs (`account`, `tenant_domain`).
    #[error("{0}")]
    MissingParam(&'static str),
    /// The provider has no such selector.
    #[error("{0}")]
    UnknownSelector(String),
}

/// A DKIM provider whose records follow from the selector (and the domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Amazon SES Easy DKIM ([`ses`]).
    Ses,
    /// SendGrid (Twilio) automated security.
    Sendgrid,
    /// Microsoft 365 (Exchange Online).
    Microsoft365,
    /// Mailchimp.
    Mailchimp,
    /// Mandrill (Mailchimp Transactional).
    Mandrill,
    /// Brevo (formerly Sendinblue).
    Brevo,
    /// Google Workspace: a TXT key.
    Google,
}

/// A preset's parameters, as a domain entry gives them (`region:`, `dkim_domain:`), validated
/// and normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// `ses`: the identity's AWS region.
    pub region: Option<String>,
    /// `ses`: the DKIM domain, overriding the region's.
    pub dkim_domain: Option<String>,
    /// `sendgrid`: the account part of the targets, like `u1234.wl001`.
    pub account: Option<String>,
    /// `microsoft365`: the tenant's DKIM domain, like `contoso.onmicrosoft.com`.
    pub tenant_domain: Option<String>,
}

impl Params {
    /// The first parameter given that `provider` does not take, with the providers that do
    /// (`"sendgrid"`, or `"a or b"`).
    pub fn foreign_to(&self, provider: Option<Provider>) -> Option<(&'static str, String)> {
        self.given()
            .into_iter()
            .find(|param| !provider.is_some_and(|p| p.params().contains(param)))
            .map(|param| {
                let owners: Vec<&str> = Provider::taking(param).map(|p| p.name()).collect();
                (param, owners.join(" or "))
            })
    }

    /// The names of the parameters given, in the order a domain entry lists its keys.
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("region", self.region.is_some()),
            ("dkim_domain", self.dkim_domain.is_some()),
            ("account", self.account.is_some()),
            ("tenant_domain", self.tenant_domain.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

impl Provider {
    /// Every provider, as `provider:` names them.
    pub const ALL: [Provider; 7] = [
        Provider::Ses,
        Provider::Sendgrid,
        Provider::Microsoft365,
        Provider::Mailchimp,
        Provider::Mandrill,
        Provider::Brevo,
        Provider::Google,
    ];

    /// The parameters the provider takes.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Provider::Ses => &["region", "dkim_domain"],
            Provider::Sendgrid => &["account"],
            Provider::Microsoft365 => &["tenant_domain"],
            Provider::Mailchimp | Provider::Mandrill | Provider::Brevo | Provider::Google => &[],
        }
    }

    /// The selectors a domain of this provider has when it lists none.
    pub fn default_selectors(self) -> &'static [&'static str] {
        match self {
            Provider::Ses => &[],
            Provider::Sendgrid => &["s1", "s2"],
            Provider::Microsoft365 => &["selector1", "selector2"],
            Provider::Mailchimp => &["k2", "k3"],
            Provider::Mandrill => &["mte1", "mte2"],
            Provider::Brevo => &["brevo1", "brevo2"],
            Provider::Google => &["google"],
        }
    }

    /// The two selectors of which only one holds a key at a time (Microsoft 365 rotates
    /// between them): while one is healthy, the other's missing key is its inactive one.
    pub fn rotating_pair(self) -> Option<(&'static str, &'static str)> {
        match self {
            Provider::Microsoft365 => Some(("selector1", "selector2")),
            _ => None,
        }
    }

    /// `provider`'s rotating pair, when a domain has records for both of its selectors.
    pub fn rotating_pair_among<'s>(
        provider: Option<Provider>,
        selectors: impl Iterator<Item = &'s str> + Clone,
    ) -> Option<(String, String)> {
        let (a, b) = provider?.rotating_pair()?;
        let has = |wanted: &str| selectors.clone().any(|s| s == wanted);
        (has(a) && has(b)).then(|| (a.to_string(), b.to_string()))
    }

    /// The providers a parameter belongs to.
    pub fn taking(param: &str) -> impl Iterator<Item = Provider> + '_ {
        Provider::ALL
            .into_iter()
            .filter(move |p| p.params().contains(&param))
    }

    /// What the record of `selector` under `domain` should hold with `params`; an error names
    /// a missing parameter, or a selector the provider does not have.
    pub fn expected(
        self,
        params: &Params,
        selector: &str,
        domain: &str,
    ) -> Result<Expected, ExpectedError> {
        match self {
            Provider::Ses => Ok(Expected::Cname(
                ses::target(selector, &ses::dkim_domain_of(params)).into(),
            )),
            Provider::Sendgrid => presets::sendgrid(params, selector),
            Provider::Microsoft365 => presets::microsoft365(params, selector, domain),
            Provider::Mailchimp => presets::mailchimp(selector),
            Provider::Mandrill => presets::mandrill(selector),
            Provider::Brevo => presets::brevo(selector, domain),
            Provider::Google => Ok(Expected::Txt),
        }
    }

    /// The name `provider:` takes.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Ses => "ses",
            Provider::Sendgrid => "sendgrid",
            Provider::Microsoft365 => "microsoft365",
            Provider::Mailchimp => "mailchimp",
            Provider::Mandrill => "mandrill",
            Provider::Brevo => "brevo",
            Provider::Google => "google",
        }
    }

    /// The provider whose targets look like `target` (lower case, no trailing dot).
    pub fn recognise(target: &str) -> Option<Provider> {
        let ends = |suffix: &str| target.ends_with(suffix);
        if ends(".amazonses.com") {
            Some(Provider::Ses)
        } else if ends(".sendgrid.net") {
            Some(Provider::Sendgrid)
        } else if ends(".onmicrosoft.com") || ends(".dkim.mail.microsoft") {
            Some(Provider::Microsoft365)
        } else if ends(".mcsv.net") {
            Some(Provider::Mailchimp)
        } else if ends(".mandrillapp.com") {
            Some(Provider::Mandrill)
        } else if ends(".brevo.com") || ends(".sendinblue.com") {
            Some(Provider::Brevo)
        } else {
            None
        }
    }

    /// The provider called `text` (any case).
    pub fn from_name(text: &str) -> Result<Provider, String> {
        let wanted = text.trim().to_ascii_lowercase();
        Provider::ALL
            .into_iter()
            .find(|p| p.name() == wanted)
            .ok_or_else(|| {
                let known: Vec<&str> = Provider::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown provider {text:?} (known: {}); for others list records with their cname",
                    known.join(", ")
                )
            })
    }
}

/// Target names within this edit distance of the expected one are typos.
const TYPO_DISTANCE: usize = 2;

/// Names the way the CNAME target `found` is wrong for a record of `selector` expected to point
/// at `expected`, with a few words on why: a provider's own reading first (whatever the
/// record's configured provider, since the shape of the target tells), then a misspelling,
/// then somewhere else altogether.
pub fn classify_wrong_target(
    selector: &str,
    expected: &str,
    found: &str,
) -> (Problem, &'static str) {
    if let Some(reading) = ses::misdirection(selector, expected, found) {
        return reading;
    }
    if edit_distance(expected, found) <= TYPO_DISTANCE {
        return (Problem::TargetTypo, " (a misspelling)");
    }
    (Problem::WrongTarget, "")
}

/// Levenshtein distance between two strings, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("amazonses.com", "amazonses.co"), 1);
        assert_eq!(edit_distance("amazonses.com", "amazones.com"), 1);
        assert_eq!(edit_distance("abc", "bca"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn providers_by_name() {
        assert_eq!(Provider::from_name(" SES "), Ok(Provider::Ses));
        assert_eq!(
            Provider::from_name("Microsoft365"),
            Ok(Provider::Microsoft365)
        );
        let err = Provider::from_name("postmark").unwrap_err();
        assert!(
            err.contains("known: ses, sendgrid, microsoft365, mailchimp, mandrill, brevo, google"),
            "{err}"
        );
    }
}
