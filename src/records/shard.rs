//! `--shard I/N`: the share of the domains one replica checks. A domain belongs to shard
//! `hash(name) mod N`, with a hash that is the same on every machine, build and run (64-bit
//! FNV-1a of the lower-case name without the trailing dot), so N replicas with I = 0…N−1 check
//! every domain exactly once, and a restart keeps each domain where it was.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use super::Records;

/// One replica's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This replica's index, below `count`.
    pub index: u32,
    /// How many replicas share the domains.
    pub count: u32,
}

impl Default for Shard {
    /// The whole: `0/1`.
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// Whether the domain `name` (lower case, no trailing dot) is this replica's.
    pub fn owns(&self, name: &str) -> bool {
        self.count <= 1 || stable_hash(name) % u64::from(self.count) == u64::from(self.index)
    }

    /// Whether this is the whole (`0/1`).
    pub fn is_whole(&self) -> bool {
        self.count <= 1
    }

    /// This replica's domains of `records`: all of them, borrowed, when unsharded.
    pub fn of<'a>(&self, records: &'a Records) -> Cow<'a, Records> {
        if self.is_whole() {
            return Cow::Borrowed(records);
        }
        Cow::Owned(Records {
            domains: records
                .domains
                .iter()
                .filter(|d| self.owns(&d.name))
                .cloned()
                .collect(),
        })
    }
}

/// 64-bit FNV-1a: stable across platforms and versions, unlike the standard library's hasher.
fn stable_hash(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.trim_end_matches('.').bytes() {
        hash ^= u64::from(byte.to_ascii_lowercase());
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || format!("invalid shard {text:?}: use I/N, like 0/3, with 0 <= I < N");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: u32 = index.trim().parse().map_err(|_| usage())?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        if count == 0 || index >= count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_as_i_of_n() {
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("0/1".parse::<Shard>().unwrap(), Shard::default());
        for bad in ["3/3", "1/0", "-1/3", "1", "a/b", ""] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("use I/N"), "{bad}: {err}");
        }
        assert_eq!(Shard { index: 1, count: 4 }.to_string(), "1/4");
    }

    #[test]
    fn every_domain_has_exactly_one_shard_whatever_its_case() {
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        let mut sizes = [0usize; 3];
        for i in 0..3000 {
            let name = format!("customer-{i}.example.com");
            let owners: Vec<u32> = shards
                .iter()
                .filter(|s| s.owns(&name))
                .map(|s| s.index)
                .collect();
            assert_eq!(owners.len(), 1, "{name}: {owners:?}");
            assert!(shards[owners[0] as usize].owns(&name.to_ascii_uppercase()));
            assert!(shards[owners[0] as usize].owns(&format!("{name}.")));
            sizes[owners[0] as usize] += 1;
        }
        // Spread evenly enough: each within 10 % of a third.
        assert!(
            sizes.iter().all(|&n| (900..=1100).contains(&n)),
            "{sizes:?}"
        );
    }

    #[test]
    fn the_hash_is_fixed() {
        // FNV-1a test vectors: a change of hash would move every domain to another replica.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash("foobar"), 0x8594_4171_f739_67e8);
    }
}
