//! Finding a value in the YAML source by its path, for errors found after parsing.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::scalar::ScalarText;
use super::validate::Seg;

/// Returns the 1-based line and column of the value at `path` in `source`.
///
/// It walks the document with a seed that descends along the path and raises an error at the
/// target node; yaml_serde stamps that error with the node's position, which is read back.
pub(super) fn locate(source: &str, path: &[Seg]) -> Option<(usize, usize)> {
    match Locator(path).deserialize(yaml_serde::Deserializer::from_str(source)) {
        Err(err) if err.to_string().contains(HERE) => {
            err.location().map(|loc| (loc.line(), loc.column()))
        }
        _ => None,
    }
}

/// The marker message of the error [`Locator`] raises at its target.
const HERE: &str = "\u{0}located";

struct Locator<'p>(&'p [Seg]);

impl<'de> DeserializeSeed<'de> for Locator<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locator<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.0.split_first() else {
            return self.here();
        };
        while let Some(key) = map.next_key::<ScalarText>()? {
            if key.0 == *want {
                return map.next_value_seed(Locator(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.0.split_first() else {
            return self.here();
        };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Locator(rest)).map(|_| ())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }
}

impl Locator<'_> {
    fn here<E: de::Error>(&self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(HERE))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_nested_values() {
        let src = "a: 1\nlist:\n  - x: 1\n  - x: 2\n    y: hello\n";
        let path = [Seg::Key("list"), Seg::Index(1), Seg::Key("y")];
        assert_eq!(locate(src, &path), Some((5, 8)));
        assert_eq!(locate(src, &[Seg::Key("nope")]), None);
    }
}
