//! The records the config file lists under `domains:`.

use super::{Domain, Record, Targets};
use crate::config::Config;

/// The records of `config`'s `domains:`, in file order.
pub fn targets(config: &Config) -> Targets {
    Targets {
        domains: config
            .domains
            .iter()
            .map(|domain| Domain {
                name: domain.domain.clone(),
                records: domain
                    .records
                    .iter()
                    .map(|record| Record {
                        selector: record.selector.clone(),
                        expected: record.expected.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}
