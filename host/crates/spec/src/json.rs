//! Checks of JSON text that serde's decoding does not make: a key given
//! twice in one object, which `serde_json` settles silently (a struct
//! refuses it, a `Value` keeps the last), so the two readings of one message
//! can differ.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// The first key some JSON object in `text` gives twice, in document order
/// of the second occurrence; `None` when there is none or `text` is not JSON
/// (decode it to say why).
#[must_use]
pub fn duplicate_key(text: &[u8]) -> Option<String> {
    serde_json::from_slice::<Scan>(text).ok()?.0
}

/// What one JSON value holds: the first duplicate key found in it.
struct Scan(Option<String>);

impl<'de> Deserialize<'de> for Scan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scan, D::Error> {
        d.deserialize_any(ScanVisitor)
    }
}

struct ScanVisitor;

impl<'de> Visitor<'de> for ScanVisitor {
    type Value = Scan;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scan, E> {
        Ok(Scan(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Scan, E> {
        Ok(Scan(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Scan, E> {
        Ok(Scan(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Scan, E> {
        Ok(Scan(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<Scan, E> {
        Ok(Scan(None))
    }
    fn visit_unit<E>(self) -> Result<Scan, E> {
        Ok(Scan(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scan, A::Error> {
        let mut found = None;
        while let Some(Scan(d)) = seq.next_element()? {
            found = found.or(d);
        }
        Ok(Scan(found))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scan, A::Error> {
        let mut keys = HashSet::new();
        let mut found = None;
        while let Some(k) = map.next_key::<String>()? {
            if found.is_some() {
                // Still read the rest, so text that is not JSON is no answer.
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let Scan(inner) = map.next_value()?;
            found = inner.or_else(|| (!keys.insert(k.clone())).then_some(k));
        }
        Ok(Scan(found))
    }
}

#[cfg(test)]
mod tests {
    use super::duplicate_key;

    #[test]
    fn finds_a_key_given_twice_at_any_depth() {
        assert_eq!(duplicate_key(br#"{"a":1,"b":2}"#), None);
        assert_eq!(duplicate_key(br#"{"a":1,"a":2}"#).as_deref(), Some("a"));
        assert_eq!(
            duplicate_key(br#"{"p":[{"x":1},{"y":{"z":1,"z":2}}]}"#).as_deref(),
            Some("z")
        );
        // The same key in two objects is no duplicate.
        assert_eq!(duplicate_key(br#"[{"a":1},{"a":2}]"#), None);
        // Escapes are read: "\u0061" is "a".
        assert_eq!(
            duplicate_key(br#"{"a":1,"\u0061":2}"#).as_deref(),
            Some("a")
        );
        assert_eq!(duplicate_key(b"{\"a\":1,\"a\":"), None, "not JSON");
        assert_eq!(duplicate_key(b"[1,2"), None, "not JSON");
    }
}
