//! DKIM providers: what a record is expected to hold, and what a wrong CNAME target means.
//!
//! A provider knows the CNAME target its selectors point at (for SES,
//! `{selector}.dkim.amazonses.com`, or a regional DKIM domain), and can tell a target that is
//! wrong in a way particular to it (an SES token under another region's DKIM domain) from a
//! typo or a target that is simply somewhere else. Each provider is a file of this folder,
//! registered in [`Provider`].

pub mod ses;

use crate::problem::Problem;

/// What a record should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A CNAME to this target (lower case, no trailing dot).
    Cname(String),
    /// A DKIM key published directly as TXT.
    Txt,
}

/// A DKIM provider whose CNAME targets follow from the selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Amazon SES Easy DKIM ([`ses`]).
    Ses,
}

/// A preset's parameters, as a domain entry gives them (`region:`, `dkim_domain:`), validated
/// and normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// `ses`: the identity's AWS region.
    pub region: Option<String>,
    /// `ses`: the DKIM domain, overriding the region's.
    pub dkim_domain: Option<String>,
}

impl Params {
    /// The names of the parameters given, in the order a domain entry lists its keys.
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("region", self.region.is_some()),
            ("dkim_domain", self.dkim_domain.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

impl Provider {
    /// Every provider, as `provider:` names them.
    pub const ALL: [Provider; 1] = [Provider::Ses];

    /// The parameters the provider takes.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Provider::Ses => &["region", "dkim_domain"],
        }
    }

    /// The provider a parameter belongs to.
    pub fn taking(param: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.params().contains(&param))
    }

    /// What the record of `selector` should hold with `params`.
    pub fn expected(self, params: &Params, selector: &str) -> Expected {
        match self {
            Provider::Ses => Expected::Cname(ses::target(selector, &ses::dkim_domain_of(params))),
        }
    }

    /// The name `provider:` takes.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Ses => "ses",
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
        let err = Provider::from_name("sendgrid").unwrap_err();
        assert!(err.contains("known: ses"), "{err}");
    }
}
