//! The latest known results: what every resolver last said about every record, and the round
//! bookkeeping. `/metrics` and the landing page render from this and nothing else, so a record
//! or resolver removed from the config cannot linger.

use std::collections::HashMap;

use crate::config::{Config, Expected};
use crate::dkim::{DkimKey, KeyError};

/// Everything known, in config order.
#[derive(Debug, Default)]
pub struct State {
    /// Configured resolver names, in config order; record views are indexed alike.
    pub resolvers: Vec<ResolverState>,
    /// Configured domains, in config order.
    pub domains: Vec<DomainState>,
    /// Every configured record, grouped by domain in config order.
    pub records: Vec<RecordState>,
    /// Completed check rounds.
    pub rounds: RoundState,
    /// Index into `records` by record name (`{selector}._domainkey.{domain}`).
    record_index: HashMap<String, usize>,
    /// Index into `resolvers` by name.
    resolver_index: HashMap<String, usize>,
    /// Index into `domains` by name.
    domain_index: HashMap<String, usize>,
}

/// What is known about one resolver as a whole.
#[derive(Debug, Clone, Default)]
pub struct ResolverState {
    /// The `resolver` label.
    pub name: String,
}

/// Per-domain bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct DomainState {
    /// The domain name, lower case.
    pub name: String,
    /// Unix time at which the latest round finished checking every record of the domain.
    pub last_check: Option<f64>,
}

/// Round bookkeeping.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundState {
    /// How many rounds have completed.
    pub completed: u64,
    /// Length in seconds of the latest completed round.
    pub last_duration: Option<f64>,
}

/// One record and what each resolver last said about it.
#[derive(Debug, Clone)]
pub struct RecordState {
    /// Owning domain, lower case.
    pub domain: String,
    /// Selector, lower case.
    pub selector: String,
    /// What the record should hold.
    pub expected: Expected,
    /// One view per resolver, indexed like [`State::resolvers`].
    pub views: Vec<View>,
}

/// What one resolver last said about one record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// Whether the latest lookup got a definitive answer; `None` before the first lookup.
    pub latest_ok: Option<bool>,
    /// The latest definitive answer. A failed lookup leaves it as it was.
    pub known: Option<Observation>,
}

impl View {
    /// The resolver's latest lookup of this record was definitive, so it is an answering
    /// resolver and `known` is current.
    pub fn answering(&self) -> Option<&Observation> {
        match self.latest_ok {
            Some(true) => self.known.as_ref(),
            _ => None,
        }
    }
}

/// What a definitive answer said about a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// What was found at the name.
    pub found: Found,
    /// The answer holds a record of the expected type.
    pub present: bool,
    /// Present and as expected: the right CNAME target, or a usable DKIM key.
    pub correct: bool,
    /// TTL of the record found, or the negative-caching TTL of an empty answer.
    pub ttl: Option<u32>,
    /// The DKIM key, for records whose key was read.
    pub key: Option<Result<DkimKey, KeyError>>,
}

/// The kind of record found, and its value as `dkim_record_info` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Found {
    /// Nothing of interest at the name.
    None,
    /// A CNAME, with its target in lower case without the trailing dot.
    Cname(String),
    /// A TXT value, as `sha256:` and the first 16 hex digits of its SHA-256.
    Txt(String),
}

impl Found {
    /// The `record_type` label value.
    pub fn record_type(&self) -> &'static str {
        match self {
            Found::None => "none",
            Found::Cname(_) => "cname",
            Found::Txt(_) => "txt",
        }
    }

    /// The `value` label value.
    pub fn value(&self) -> &str {
        match self {
            Found::None => "",
            Found::Cname(v) | Found::Txt(v) => v,
        }
    }
}

impl RecordState {
    /// Views of the resolvers whose latest lookup was definitive, with their resolver index.
    pub fn answering(&self) -> impl Iterator<Item = (usize, &Observation)> {
        self.views
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.answering().map(|o| (i, o)))
    }

    /// Share of answering resolvers on which the record is correct; `None` when none answered.
    pub fn propagation_ratio(&self) -> Option<f64> {
        let (answering, correct) = self.answering().fold((0u32, 0u32), |(a, c), (_, o)| {
            (a + 1, c + u32::from(o.correct))
        });
        (answering > 0).then(|| f64::from(correct) / f64::from(answering))
    }

    /// Whether every answering resolver returned the same thing; `None` when none answered.
    pub fn resolvers_agree(&self) -> Option<bool> {
        let mut found = self.answering().map(|(_, o)| &o.found);
        let first = found.next()?;
        Some(found.all(|f| f == first))
    }

    /// Correct on every answering resolver; `None` when none answered.
    pub fn healthy(&self) -> Option<bool> {
        let mut any = false;
        for (_, o) in self.answering() {
            any = true;
            if !o.correct {
                return Some(false);
            }
        }
        any.then_some(true)
    }

    /// The key the record leads to, from the first answering resolver that read one.
    pub fn key(&self) -> Option<&DkimKey> {
        self.answering()
            .find_map(|(_, o)| o.key.as_ref().and_then(|k| k.as_ref().ok()))
    }
}

impl State {
    /// Brings the state in line with `config`: records, domains and resolvers that are gone are
    /// dropped, new ones start unknown, and what is known about the rest is kept.
    pub fn reconcile(&mut self, config: &Config) {
        let old_resolvers: HashMap<&str, usize> = self
            .resolvers
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect();
        let resolver_map: Vec<Option<usize>> = config
            .resolvers
            .iter()
            .map(|r| old_resolvers.get(r.name.as_str()).copied())
            .collect();

        let mut old_records: HashMap<(String, String), RecordState> =
            std::mem::take(&mut self.records)
                .into_iter()
                .map(|r| ((r.domain.clone(), r.selector.clone()), r))
                .collect();
        let mut old_domains: HashMap<String, DomainState> = std::mem::take(&mut self.domains)
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();

        for domain in &config.domains {
            self.domains.push(
                old_domains
                    .remove(&domain.domain)
                    .unwrap_or_else(|| DomainState {
                        name: domain.domain.clone(),
                        last_check: None,
                    }),
            );
            for record in &domain.records {
                let key = (domain.domain.clone(), record.selector.clone());
                let views = match old_records.remove(&key) {
                    // A record whose expectation changed is a new record: nothing known carries over.
                    Some(old) if old.expected == record.expected => resolver_map
                        .iter()
                        .map(|i| {
                            i.and_then(|i| old.views.get(i).cloned())
                                .unwrap_or_default()
                        })
                        .collect(),
                    _ => vec![View::default(); config.resolvers.len()],
                };
                self.records.push(RecordState {
                    domain: domain.domain.clone(),
                    selector: record.selector.clone(),
                    expected: record.expected.clone(),
                    views,
                });
            }
        }
        self.resolvers = config
            .resolvers
            .iter()
            .map(|r| ResolverState {
                name: r.name.clone(),
            })
            .collect();
        self.record_index = self
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("{}._domainkey.{}", r.selector, r.domain), i))
            .collect();
        self.resolver_index = index_by(&self.resolvers, |r| &r.name);
        self.domain_index = index_by(&self.domains, |d| &d.name);
    }

    /// Records the outcome of one lookup: a definitive observation, or a failure (`None`), which
    /// leaves what is known as it was.
    ///
    /// Results are matched by name, so a result that arrives after a reload lands on the same
    /// record if it is still configured, and is dropped if it is not.
    pub fn apply(&mut self, record: &str, resolver: &str, outcome: Option<Observation>) {
        let (Some(&r), Some(&v)) = (
            self.record_index.get(record),
            self.resolver_index.get(resolver),
        ) else {
            return;
        };
        let Some(view) = self.records.get_mut(r).and_then(|r| r.views.get_mut(v)) else {
            return;
        };
        view.latest_ok = Some(outcome.is_some());
        if let Some(observation) = outcome {
            view.known = Some(observation);
        }
    }

    /// Notes that every record of `domain` has been checked in a round ending at `at`.
    pub fn domain_checked(&mut self, domain: &str, at: f64) {
        if let Some(&i) = self.domain_index.get(domain) {
            self.domains[i].last_check = Some(at);
        }
    }
}

fn index_by<T>(items: &[T], key: impl Fn(&T) -> &String) -> HashMap<String, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| (key(item).clone(), i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn observation(found: Found, correct: bool) -> Observation {
        Observation {
            present: found != Found::None,
            found,
            correct,
            ttl: Some(300),
            key: None,
        }
    }

    const S1: &str = "s1._domainkey.example.com";

    fn config(resolvers: &[&str], selectors: &[&str]) -> Config {
        let mut yaml = String::from("resolvers:\n");
        for (i, r) in resolvers.iter().enumerate() {
            yaml.push_str(&format!("  - name: {r}\n    address: 127.0.0.{}\n", i + 1));
        }
        yaml.push_str("domains:\n  - domain: example.com\n    provider: ses\n    selectors:\n");
        for s in selectors {
            yaml.push_str(&format!("      - {s}\n"));
        }
        parse(&yaml, "test.yaml").unwrap()
    }

    #[test]
    fn failures_keep_what_is_known() {
        let mut state = State::default();
        state.reconcile(&config(&["a", "b", "c"], &["s1"]));
        let good = observation(Found::Cname("s1.dkim.amazonses.com".into()), true);
        state.apply(S1, "a", Some(good.clone()));
        state.apply(S1, "b", Some(good.clone()));
        state.apply(S1, "c", Some(observation(Found::None, false)));
        assert_eq!(state.records[0].propagation_ratio(), Some(2.0 / 3.0));
        assert_eq!(state.records[0].resolvers_agree(), Some(false));

        // Resolver c fails: it stops answering, but what it said is kept.
        state.apply(S1, "c", None);
        let view = &state.records[0].views[2];
        assert_eq!(view.latest_ok, Some(false));
        assert_eq!(view.known, Some(observation(Found::None, false)));
        assert_eq!(state.records[0].propagation_ratio(), Some(1.0));
        assert_eq!(state.records[0].resolvers_agree(), Some(true));
    }

    #[test]
    fn reconcile_keeps_unchanged_and_drops_removed() {
        let mut state = State::default();
        state.reconcile(&config(&["a", "b"], &["s1", "s2"]));
        let good = observation(Found::Cname("s2.dkim.amazonses.com".into()), true);
        state.apply("s2._domainkey.example.com", "b", Some(good.clone()));

        // Resolver a and record s1 go away, resolver c and record s3 arrive.
        state.reconcile(&config(&["b", "c"], &["s2", "s3"]));
        let names: Vec<_> = state.resolvers.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        let selectors: Vec<_> = state.records.iter().map(|r| r.selector.as_str()).collect();
        assert_eq!(selectors, ["s2", "s3"]);
        assert_eq!(state.records[0].views[0].known, Some(good));
        assert_eq!(state.records[0].views[1], View::default());
        assert_eq!(state.records[1].views, vec![View::default(); 2]);
    }
}
