//! The JSON Schemas of a tool's input (`spec.parameters`) and output
//! (`spec.output`): checked when the manifest is read — a valid JSON Schema
//! with no unknown keywords, since a typo such as `requird` would silently
//! drop a check — compiled once, and applied in full to every input and
//! output.

use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// A validated, compiled JSON Schema.
#[derive(Clone)]
pub struct Schema {
    json: Value,
    validator: Arc<jsonschema::Validator>,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.json.fmt(f)
    }
}

impl Serialize for Schema {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl PartialEq for Schema {
    fn eq(&self, other: &Schema) -> bool {
        self.json == other.json
    }
}

/// Why a schema was refused: where in it, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct SchemaError {
    /// Where in the schema (`properties.name.type`), or empty.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Keywords of JSON Schema (2020-12, plus draft-07's `definitions`,
/// `dependencies` and `additionalItems`).
const KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "$ref",
    "$defs",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$vocabulary",
    "$comment",
    "definitions",
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxContains",
    "minContains",
    "maxProperties",
    "minProperties",
    "required",
    "dependentRequired",
    "title",
    "description",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "examples",
    "format",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
    "properties",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
    "dependentSchemas",
    "dependencies",
    "items",
    "prefixItems",
    "additionalItems",
    "contains",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
];

/// Keywords whose value is a map of names to subschemas.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Keywords whose value is a list of subschemas.
const SCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value is one subschema.
const SCHEMA_ONE: &[&str] = &[
    "not",
    "if",
    "then",
    "else",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "propertyNames",
    "additionalItems",
    "contentSchema",
];

/// The compiler's message with the value it refuses, which it prints as
/// JSON (`"xxx…" is not valid …`), cut to [`super::yaml::MAX_QUOTED_CHARS`]
/// characters: a message names the wrong value, it does not replay it
/// (fuzz finding 6, docs/RELIABILITY.md).
fn without_long_instance(e: &jsonschema::ValidationError<'_>) -> String {
    let message = e.to_string();
    let shown = e.instance().to_string();
    let max = super::yaml::MAX_QUOTED_CHARS;
    if shown.chars().count() <= max {
        return message;
    }
    let cut: String = shown.chars().take(max).chain(['…']).collect();
    message.replace(&shown, &cut)
}

impl Schema {
    /// Checks and compiles `json`.
    ///
    /// # Errors
    ///
    /// [`SchemaError`] for an unknown keyword (with the likely intended one)
    /// or a schema JSON Schema itself refuses.
    pub fn compile(json: Value) -> Result<Schema, SchemaError> {
        unknown_keywords(&json, "")?;
        let validator = jsonschema::validator_for(&json).map_err(|e| SchemaError {
            path: dotted(&e.schema_path().to_string()),
            message: format!("not a valid JSON Schema: {}", without_long_instance(&e)),
        })?;
        Ok(Schema {
            json,
            validator: Arc::new(validator),
        })
    }

    /// The schema as written.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// Checks a tool's input against the whole schema.
    ///
    /// # Errors
    ///
    /// The first violation, naming the property and what it must be.
    pub fn check_input(&self, value: &Value) -> Result<(), String> {
        self.check(value, "input")
    }

    /// Checks a tool's output against the whole schema.
    ///
    /// # Errors
    ///
    /// The first violation, naming the property and what it must be.
    pub fn check_output(&self, value: &Value) -> Result<(), String> {
        self.check(value, "output")
    }

    fn check(&self, value: &Value, what: &str) -> Result<(), String> {
        let Some(e) = self.validator.iter_errors(value).next() else {
            return Ok(());
        };
        let path = dotted(&e.instance_path().to_string());
        let at = if path.is_empty() {
            format!("the {what}")
        } else {
            format!("{what} property `{path}`")
        };
        Err(match e.kind() {
            jsonschema::error::ValidationErrorKind::Required { property } => {
                let p = property
                    .as_str()
                    .map_or_else(|| property.to_string(), str::to_string);
                format!("{at} lacks the required property `{p}`")
            }
            jsonschema::error::ValidationErrorKind::Type { kind } => {
                let want = match kind {
                    jsonschema::error::TypeKind::Single(t) => t.to_string(),
                    jsonschema::error::TypeKind::Multiple(ts) => ts
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" or "),
                };
                format!("{at} must be of type {want}, not {}", short(e.instance()))
            }
            _ => format!("{at}: {}", short_message(&e.to_string())),
        })
    }
}

/// A JSON pointer (`/properties/name`) as a dotted path (`properties.name`).
fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// A value for a message, shortened: an input can be large.
fn short(v: &Value) -> String {
    short_message(&v.to_string())
}

fn short_message(s: &str) -> String {
    const MAX: usize = 120;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn unknown_keywords(schema: &Value, path: &str) -> Result<(), SchemaError> {
    let Value::Object(map) = schema else {
        // `true` and `false` are schemas too; anything else is caught by the
        // meta-schema.
        return Ok(());
    };
    let at = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    for (key, value) in map {
        if !KEYWORDS.contains(&key.as_str()) && !key.starts_with("x-") {
            let hint = closest(key).map_or_else(
                || " (extensions must start with `x-`)".to_string(),
                |k| format!(" (did you mean `{k}`?)"),
            );
            return Err(SchemaError {
                path: at(key),
                message: format!("`{key}` is not a JSON Schema keyword{hint}"),
            });
        }
        if SCHEMA_MAPS.contains(&key.as_str())
            && let Value::Object(children) = value
        {
            for (name, child) in children {
                unknown_keywords(child, &format!("{}.{name}", at(key)))?;
            }
        } else if SCHEMA_LISTS.contains(&key.as_str())
            && let Value::Array(children) = value
        {
            for (i, child) in children.iter().enumerate() {
                unknown_keywords(child, &format!("{}[{i}]", at(key)))?;
            }
        } else if SCHEMA_ONE.contains(&key.as_str()) {
            unknown_keywords(value, &at(key))?;
        } else if key == "items" {
            match value {
                Value::Array(children) => {
                    for (i, child) in children.iter().enumerate() {
                        unknown_keywords(child, &format!("{}[{i}]", at(key)))?;
                    }
                }
                other => unknown_keywords(other, &at(key))?,
            }
        } else if key == "dependencies"
            && let Value::Object(children) = value
        {
            for (name, child) in children {
                if child.is_object() {
                    unknown_keywords(child, &format!("{}.{name}", at(key)))?;
                }
            }
        }
    }
    Ok(())
}

/// The keyword `word` most likely meant, if one is close.
fn closest(word: &str) -> Option<&'static str> {
    KEYWORDS
        .iter()
        .map(|k| {
            (
                distance(&word.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> Schema {
        Schema::compile(v).expect("valid schema")
    }

    #[test]
    fn input_checks_name_the_property() {
        let s = schema(
            json!({"type":"object","properties":{"name":{"type":"string"},"n":{"type":"integer"}},"required":["name"]}),
        );
        assert!(s.check_input(&json!({"name": "Ada"})).is_ok());
        let e = s.check_input(&json!({})).unwrap_err();
        assert!(e.contains("lacks the required property `name`"), "{e}");
        let e = s.check_input(&json!({"name": "x", "n": "3"})).unwrap_err();
        assert!(e.contains("`n`") && e.contains("integer"), "{e}");
        assert!(s.check_input(&json!([1])).is_err());
    }

    #[test]
    fn the_whole_schema_applies_not_only_the_top_level() {
        let s = schema(json!({
            "type": "object",
            "properties": {
                "opts": {
                    "type": "object",
                    "properties": { "depth": { "type": "integer", "minimum": 1 } },
                    "required": ["depth"],
                    "additionalProperties": false
                },
                "tags": { "type": "array", "items": { "type": "string" } }
            }
        }));
        let e = s.check_input(&json!({"opts": {}})).unwrap_err();
        assert!(e.contains("opts") && e.contains("`depth`"), "{e}");
        let e = s.check_input(&json!({"opts": {"depth": 0}})).unwrap_err();
        assert!(e.contains("opts.depth"), "{e}");
        let e = s
            .check_input(&json!({"opts": {"depth": 2, "x": 1}}))
            .unwrap_err();
        assert!(e.contains("opts"), "{e}");
        let e = s.check_input(&json!({"tags": ["a", 3]})).unwrap_err();
        assert!(e.contains("tags.1") && e.contains("string"), "{e}");
        assert!(
            s.check_input(&json!({"opts": {"depth": 2}, "tags": ["a"]}))
                .is_ok()
        );
    }

    #[test]
    fn typos_and_invalid_schemas_are_refused_with_the_place() {
        let e = Schema::compile(json!({"type":"object","requird":["name"]})).unwrap_err();
        assert_eq!(e.path, "requird");
        assert!(e.message.contains("did you mean `required`?"), "{e}");
        let e = Schema::compile(json!({"type":"object","properties":{"n":{"tpye":"string"}}}))
            .unwrap_err();
        assert_eq!(e.path, "properties.n.tpye", "{e}");
        assert!(e.message.contains("`type`"), "{e}");
        let e = Schema::compile(json!({"type":"object","required":"name"})).unwrap_err();
        assert!(e.message.contains("not a valid JSON Schema"), "{e}");
        let e = Schema::compile(json!({"type":"objekt"})).unwrap_err();
        assert!(e.message.contains("not a valid JSON Schema"), "{e}");
        assert!(Schema::compile(json!({"type":"object","x-ui":{"order":1}})).is_ok());
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let s = schema(json!({"type":"object","properties":{"n":{"type":"integer"}}}));
        let e = s
            .check_input(&json!({"n": "x".repeat(10_000)}))
            .unwrap_err();
        assert!(e.len() < 300, "{e}");
    }
}
