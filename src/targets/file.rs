//! The records the config file lists under `domains:`.

use super::{Domain, Record, Targets};
use crate::config::Config;

/// Splits `config` into its settings and resolvers (with no domains left) and the records of its
/// `domains:`, in file order. The names are moved, not copied: at a hundred thousand records the
/// exporter would otherwise keep every name twice.
pub fn split(mut config: Config) -> (Config, Targets) {
    let domains = std::mem::take(&mut config.domains);
    let targets = Targets {
        domains: domains
            .into_iter()
            .map(|domain| Domain {
                name: domain.domain,
                rotating_pair: domain.rotating_pair,
                records: domain
                    .records
                    .into_iter()
                    .map(|record| Record {
                        selector: record.selector,
                        expected: record.expected,
                        from_ses: None,
                    })
                    .collect(),
            })
            .collect(),
    };
    (config, targets)
}

/// The records of `config`'s `domains:`, in file order.
pub fn targets(config: &Config) -> Targets {
    split(config.clone()).1
}
