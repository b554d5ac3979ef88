//! Human-friendly quantities shared by manifests and flags: byte sizes
//! (`64MiB`), durations (`500ms`) and CPU shares (`50%`).
//!
//! Each type parses from a string with a message that says what is accepted,
//! and prints back in the same notation, so errors and `--help` read alike.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A number of bytes, written as `65536`, `512KiB`, `64MiB`, `1GiB` (binary
/// units) or `10kB`, `10MB`, `1GB` (decimal units).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "IntOrString", into = "u64")]
pub struct ByteSize(pub u64);

/// A wall-clock duration, written as `500ms`, `5s`, `2m` or `1h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "IntOrString")]
pub struct HumanDuration(pub Duration);

/// A share of one CPU, written as `50%` (half a core) up to `6400%`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "IntOrString")]
pub struct Percent(pub u32);

/// YAML reads `500` as an integer and `500ms` as a string; both must reach
/// our parsers so that a missing unit gets a message that says so.
#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrString {
    Int(u64),
    Str(String),
}

const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("kB", 1_000),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{s}` is not a size: write a whole number of bytes or a number with a unit, \
                 like 65536, 512KiB, 64MiB or 1GiB"
            )
        };
        let t = s.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = t[..digits].parse().map_err(|_| bad())?;
        let unit = t[digits..].trim();
        let multiplier = if unit.is_empty() {
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, m)| *m)
                .ok_or_else(bad)?
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("`{s}` is too large"))
    }
}

impl TryFrom<IntOrString> for ByteSize {
    type Error = String;

    fn try_from(v: IntOrString) -> Result<Self, String> {
        match v {
            IntOrString::Int(n) => Ok(ByteSize(n)),
            IntOrString::Str(s) => s.parse(),
        }
    }
}

impl From<ByteSize> for u64 {
    fn from(b: ByteSize) -> u64 {
        b.0
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, m) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if self.0 >= m && self.0.is_multiple_of(m) {
                return write!(f, "{}{name}", self.0 / m);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{s}` is not a duration: write a whole number with a unit, like 500ms, 5s, 2m, 1h or 7d"
            )
        };
        let t = s.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = t[..digits].parse().map_err(|_| bad())?;
        let duration = match t[digits..].trim() {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" | "min" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            "d" => Duration::from_secs(number.saturating_mul(86_400)),
            "" => {
                return Err(format!(
                    "`{s}` has no unit: write {number}ms or {number}s (units: ms, s, m, h, d)"
                ));
            }
            _ => return Err(bad()),
        };
        Ok(HumanDuration(duration))
    }
}

impl TryFrom<IntOrString> for HumanDuration {
    type Error = String;

    fn try_from(v: IntOrString) -> Result<Self, String> {
        match v {
            IntOrString::Int(n) => n.to_string().parse(),
            IntOrString::Str(s) => s.parse(),
        }
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 || !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else if ms.is_multiple_of(86_400_000) {
            write!(f, "{}d", ms / 86_400_000)
        } else if ms.is_multiple_of(3_600_000) {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for Percent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{s}` is not a CPU share: write a percentage of one core from 1% to 6400%, like 50%"
            )
        };
        let number = s.trim().strip_suffix('%').ok_or_else(bad)?;
        let n: u32 = number.trim().parse().map_err(|_| bad())?;
        if !(1..=6400).contains(&n) {
            return Err(bad());
        }
        Ok(Percent(n))
    }
}

impl TryFrom<IntOrString> for Percent {
    type Error = String;

    fn try_from(v: IntOrString) -> Result<Self, String> {
        match v {
            IntOrString::Int(n) => n.to_string().parse(),
            IntOrString::Str(s) => s.parse(),
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_systems() {
        for (text, bytes) in [
            ("65536", 65536),
            ("64MiB", 64 << 20),
            ("512KiB", 512 << 10),
            ("1GiB", 1 << 30),
            ("10MB", 10_000_000),
            ("3 kB", 3000),
            ("0", 0),
        ] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        for bad in [
            "",
            "MiB",
            "64 megs",
            "-1",
            "1.5MiB",
            "64mib",
            "99999999999999GiB",
        ] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad} should be rejected");
        }
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(
            "500ms".parse(),
            Ok(HumanDuration(Duration::from_millis(500)))
        );
        assert_eq!("5s".parse(), Ok(HumanDuration(Duration::from_secs(5))));
        assert_eq!("2m".parse(), Ok(HumanDuration(Duration::from_secs(120))));
        assert_eq!("1h".parse(), Ok(HumanDuration(Duration::from_secs(3600))));
        assert_eq!(
            "7d".parse(),
            Ok(HumanDuration(Duration::from_secs(7 * 86_400)))
        );
        let err = "500".parse::<HumanDuration>().unwrap_err();
        assert!(err.contains("500ms"), "{err}");
        assert!("5 minutes".parse::<HumanDuration>().is_err());
        assert_eq!(
            HumanDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        assert_eq!(HumanDuration(Duration::from_secs(120)).to_string(), "2m");
    }

    #[test]
    fn percentages_are_bounded() {
        assert_eq!("50%".parse(), Ok(Percent(50)));
        assert!("0%".parse::<Percent>().is_err());
        assert!("50".parse::<Percent>().is_err());
        assert!("10000%".parse::<Percent>().is_err());
    }
}
