//! YAML with errors that point at the place: the file, the line and the
//! field path (`spec.security.sandbox.timeout`, `agents[3].input`).

use super::ManifestError;
use std::path::Path;

/// Deserializes YAML text read from `file` into `T`; an error names the
/// file, the line and the field path (`agents[3].input`), like manifest
/// errors do.
///
/// # Errors
///
/// [`ManifestError::Invalid`] for bad YAML or a value of the wrong shape.
pub fn from_yaml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, ManifestError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        let inner = e.into_inner();
        let line = inner.location().map(|l| l.line());
        let mut message = inner.to_string();
        if let Some(loc) = inner.location() {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        // serde_yaml prefixes the path it knows; ours is more precise.
        if let Some((head, rest)) = message.split_once(": ")
            && !field.is_empty()
            && field.starts_with(head)
        {
            message = rest.to_string();
        }
        ManifestError::Invalid {
            file: file.to_path_buf(),
            line,
            field,
            message: humane(&message),
        }
    })
}

/// serde's message in the user's words: never the value read (the file may
/// not be a manifest at all: `run /etc/passwd` must not print it), never a
/// Rust type name, and YAML's alias limit named for what it is.
fn humane(message: &str) -> String {
    if message.contains("repetition limit exceeded") {
        return "too many YAML aliases (`*name` references to `&name` anchors) expand here; \
                write the values out instead of nesting aliases"
            .into();
    }
    if message.contains("recursion limit exceeded") {
        return "the YAML is nested too deeply".into();
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((found, expected)) = rest.split_once(", expected ")
        {
            // `string "…"`, `integer `42``, `map`: keep the kind only.
            let kind = found
                .split([' ', '"', '`'])
                .next()
                .filter(|k| !k.is_empty())
                .unwrap_or("value");
            let kind = match kind {
                "map" => "a mapping",
                "sequence" => "a list",
                "unit" => "an empty value",
                "string" => "a string",
                "integer" => "an integer",
                "floating" => "a number",
                "boolean" => "a boolean",
                _ => "a value",
            };
            return format!("found {kind}, expected {}", expected_words(expected));
        }
    }
    message.to_string()
}

fn expected_words(expected: &str) -> String {
    if expected.starts_with("struct ") {
        return "a mapping of fields (a Toka manifest has `metadata:` and `spec:`)".into();
    }
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        other => other.to_string(),
    }
}
