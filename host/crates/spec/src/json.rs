//! Checks of JSON text that serde's decoding does not make (a key given
//! twice in one object, which `serde_json` settles silently: a struct
//! refuses it, a `Value` keeps the last, so the two readings of one message
//! can differ), and decoding errors told without the text decoded.

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

/// Why a JSON request body did not decode into a typed body, in the
/// user's words: the kind of value found and what was expected, an unknown
/// field's name cut to 64 characters, and where; never a value read (the
/// body may hold a secret) nor a Rust type name.
#[must_use]
pub fn decode_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let place = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&place).unwrap_or(&text);
    let message = crate::manifest::yaml::shorten_quoted(&crate::manifest::yaml::humane(message));
    if e.line() == 0 {
        message
    } else {
        format!("{message} (line {}, column {})", e.line(), e.column())
    }
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
    use super::{decode_error, duplicate_key};

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        workflow: String,
        #[serde(default)]
        limits: Option<Limits>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Limits {
        timeout: Option<u64>,
    }

    /// Fuzz finding 13 (docs/RELIABILITY.md): `POST /v1/agents` repeated a
    /// long unknown key in full, and serde's wording names values read and
    /// Rust types.
    #[test]
    fn a_decode_error_names_no_value_no_type_and_keys_shortened() {
        let secret = "s3cr3t".repeat(20);
        let key = "k".repeat(10_000);
        // Fuzz finding 16: a key holding backticks split into short spans.
        let ticked = format!(
            "go{}`, expected one of `workflow`, {}",
            "J".repeat(20),
            "M".repeat(200)
        );
        for (body, says) in [
            (
                format!(r#"{{"workflow":"w","{ticked}":1}}"#),
                "unknown field `goJJ",
            ),
            (
                format!(r#"{{"workflow":"w","{key}":1}}"#),
                "unknown field `",
            ),
            (
                format!(r#"{{"workflow":"w","limits":"{secret}"}}"#),
                "found a string, expected a mapping of fields",
            ),
            (format!(r#"{{"workflow":["{secret}"]}}"#), "found a list"),
            (
                r#"{"workflow":"w","limits":{"timeout":-1}}"#.to_string(),
                "found an integer, expected a whole number, 0 or more",
            ),
        ] {
            let e = serde_json::from_str::<Body>(&body).expect_err("refused");
            let m = decode_error(&e);
            assert!(m.contains(says), "{m}");
            assert!(m.contains("(line 1, column"), "{m}");
            assert!(
                !m.contains("s3cr3t") && !m.contains("struct") && !m.contains("Limits"),
                "{m}"
            );
            assert!(m.len() < 200 && !m.contains(&"M".repeat(65)), "{m}");
        }
    }

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
