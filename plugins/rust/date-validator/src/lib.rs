//! `date-validator`: checks a calendar date and normalises it to ISO 8601.
//!
//! Accepts `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYYMMDD`, `DD.MM.YYYY`,
//! `Month D, YYYY` and `D Month YYYY` (English month names, full or first
//! three letters). Answers `{"valid": true, "normalized": "2026-11-26", ...}`
//! or `{"valid": false, "reason": ...}`.

wit_bindgen::generate!({ world: "tool", path: "../../../wit/v0.1.0" });

use exports::toka::plugin::handler::{Guest, ToolError, ToolInfo};

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

struct DateValidator;

impl Guest for DateValidator {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "date-validator".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Checks that a date exists and normalises it to YYYY-MM-DD.".into(),
            input_schema: r#"{"type":"object","properties":{"date":{"type":"string","description":"A date such as 2026-11-26, 26.11.2026 or November 26, 2026"}},"required":["date"]}"#.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let value: serde_json::Value = serde_json::from_str(&input)
            .map_err(|e| ToolError::InvalidInput(format!("input is not JSON: {e}")))?;
        let text = value
            .get("date")
            .and_then(|d| d.as_str())
            .ok_or_else(|| ToolError::InvalidInput("`date` (a string) is required".into()))?;
        let answer = match parse(text.trim()).and_then(|(y, m, d)| check(y, m, d)) {
            Ok((y, m, d)) => serde_json::json!({
                "valid": true,
                "input": text,
                "normalized": format!("{y:04}-{m:02}-{d:02}"),
                "weekday": WEEKDAYS[weekday(y, m, d)],
                "day_of_year": day_of_year(y, m, d),
                "leap_year": is_leap(y),
            }),
            Err(reason) => serde_json::json!({ "valid": false, "input": text, "reason": reason }),
        };
        Ok(answer.to_string())
    }
}

fn parse(s: &str) -> Result<(i64, u32, u32), String> {
    let unknown = || format!("`{s}` is not a date in a known format (try YYYY-MM-DD)");
    let num = |p: &str| p.parse::<i64>().map_err(|_| unknown());
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok((num(&s[..4])?, num(&s[4..6])? as u32, num(&s[6..])? as u32));
    }
    for sep in ['-', '/'] {
        let parts: Vec<&str> = s.split(sep).collect();
        if parts.len() == 3 && parts[0].len() == 4 {
            return Ok((num(parts[0])?, num(parts[1])? as u32, num(parts[2])? as u32));
        }
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() == 3 && parts[2].len() == 4 {
        return Ok((num(parts[2])?, num(parts[1])? as u32, num(parts[0])? as u32));
    }
    let words: Vec<String> = s
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    if words.len() == 3 {
        if let Some(m) = month(&words[0]) {
            return Ok((num(&words[2])?, m, num(&words[1])? as u32));
        }
        if let Some(m) = month(&words[1]) {
            return Ok((num(&words[2])?, m, num(&words[0])? as u32));
        }
    }
    Err(unknown())
}

fn month(word: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| *m == word || (word.len() == 3 && m.starts_with(word)))
        .map(|i| i as u32 + 1)
}

fn check(y: i64, m: u32, d: u32) -> Result<(i64, u32, u32), String> {
    if !(1..=9999).contains(&y) {
        return Err(format!("year {y} is outside 1..=9999"));
    }
    if !(1..=12).contains(&m) {
        return Err(format!("month {m} is outside 1..=12"));
    }
    let last = days_in_month(y, m);
    if d == 0 || d > last {
        return Err(format!("{} {y} has {last} days, not {d}", capitalised(m)));
    }
    Ok((y, m, d))
}

fn capitalised(m: u32) -> String {
    let name = MONTHS[m as usize - 1];
    name[..1].to_uppercase() + &name[1..]
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn day_of_year(y: i64, m: u32, d: u32) -> u32 {
    (1..m).map(|k| days_in_month(y, k)).sum::<u32>() + d
}

/// Monday = 0, by days since 0001-01-01 (a Monday in the proleptic Gregorian calendar).
fn weekday(y: i64, m: u32, d: u32) -> usize {
    let py = y - 1;
    let days = py * 365 + py / 4 - py / 100 + py / 400 + i64::from(day_of_year(y, m, d)) - 1;
    (days % 7) as usize
}

export!(DateValidator);
