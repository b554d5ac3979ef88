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
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
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
            message: shorten_quoted(&humane(&message)),
        }
    })?;
    unique_keys(file, text)?;
    Ok(value)
}

/// A key given twice in one mapping is an error. Typed fields refuse it
/// already, but a mapping read as JSON (`spec.parameters`, `agents[].input`)
/// kept the last value silently, so a schema could say one thing at the top
/// and the opposite further down (fuzz finding 5, docs/RELIABILITY.md).
/// serde_yaml's own `Value` refuses duplicates; only that error is taken
/// from it, without the key.
fn unique_keys(file: &Path, text: &str) -> Result<(), ManifestError> {
    let Err(e) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
        return Ok(());
    };
    let message = e.to_string();
    let Some((field, _)) = message.split_once("duplicate entry") else {
        return Ok(());
    };
    Err(ManifestError::Invalid {
        file: file.to_path_buf(),
        line: e.location().map(|l| l.line()),
        field: field.trim_end_matches([' ', ':']).to_string(),
        message: "a key is given twice in this mapping; give each key once".into(),
    })
}

/// Longest value a message quotes (`` `…` ``), in characters: a message
/// says which value is wrong, it does not replay a 200 KiB scalar (found
/// by the `manifest` fuzz target, docs/RELIABILITY.md).
pub(crate) const MAX_QUOTED_CHARS: usize = 64;

/// `message` with every backtick-quoted span longer than
/// [`MAX_QUOTED_CHARS`] cut to that many characters and `…`. The name in
/// serde's `unknown field `NAME`, expected …` (or `unknown variant`) is cut
/// as one span even when it holds backticks itself (fuzz finding 16), which
/// would otherwise split it into short spans that pass whole.
pub(crate) fn shorten_quoted(message: &str) -> String {
    for lead in ["unknown field `", "unknown variant `"] {
        if let Some((head, rest)) = message.split_once(lead)
            && let Some(end) = rest.rfind("`, expected")
        {
            let name = &rest[..end];
            let name: String = if name.chars().count() > MAX_QUOTED_CHARS {
                name.chars().take(MAX_QUOTED_CHARS).chain(['…']).collect()
            } else {
                name.to_string()
            };
            let name = name.replace('`', "'");
            return format!(
                "{}{lead}{name}{}",
                shorten_spans(head),
                shorten_spans(&rest[end..])
            );
        }
    }
    shorten_spans(message)
}

/// A name the user gave (a tool asked for, possibly from a URL), cut to
/// [`MAX_QUOTED_CHARS`] and `…` for a message.
pub(crate) fn shorten_name(name: &str) -> String {
    if name.chars().count() > MAX_QUOTED_CHARS {
        name.chars().take(MAX_QUOTED_CHARS).chain(['…']).collect()
    } else {
        name.to_string()
    }
}

fn shorten_spans(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 && part.chars().count() > MAX_QUOTED_CHARS {
            out.extend(part.chars().take(MAX_QUOTED_CHARS));
            out.push('…');
        } else {
            out.push_str(part);
        }
    }
    out
}

/// serde's message in the user's words: never the value read (the file may
/// not be a manifest at all: `run /etc/passwd` must not print it), never a
/// Rust type name, and YAML's alias limit named for what it is.
pub(crate) fn humane(message: &str) -> String {
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
            // The last `, expected`: the value found (quoted first) may
            // itself contain one (fuzz finding 4, docs/RELIABILITY.md).
            && let Some((found, expected)) = rest.rsplit_once(", expected ")
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
    // The manifest's own hint only for a manifest's top level: an agents
    // file or a nested block (`spec.security: 5`) is a mapping of other
    // fields (fuzz finding 7, docs/RELIABILITY.md).
    if expected == "struct RawManifest" {
        return "a mapping of fields (a Toka manifest has `metadata:` and `spec:`)".into();
    }
    if expected.starts_with("struct ") {
        return "a mapping of fields".into();
    }
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Fuzz finding 1 (docs/RELIABILITY.md): a long value or key was quoted
    /// in full.
    #[test]
    fn long_values_and_keys_are_quoted_shortened() {
        let long = "x".repeat(10_000);
        for text in [
            format!("metadata: {{ name: {long}, version: 1.0.0, description: d }}\nspec: {{}}\n"),
            format!("metadata: {{ {long}: 1 }}\n"),
            format!(
                "metadata: {{ name: a, version: 1.0.0, description: d }}\nspec: {{ executable: {{ type: {long}, path: a }} }}\n"
            ),
        ] {
            let e = from_yaml::<super::super::raw::RawManifest>(Path::new("/m.yaml"), &text)
                .err()
                .expect("refused");
            let ManifestError::Invalid { message, .. } = &e else {
                panic!("{e}");
            };
            assert!(message.len() < 400, "{message}");
            assert!(
                message.contains(&format!("`{}…`", "x".repeat(MAX_QUOTED_CHARS))),
                "{message}"
            );
        }
    }

    /// Fuzz finding 4 (docs/RELIABILITY.md): a value containing
    /// ", expected " had its tail printed.
    #[test]
    fn a_value_that_says_expected_is_not_printed() {
        let text = "secret one, expected secret two\n";
        let e = from_yaml::<super::super::raw::RawManifest>(Path::new("/m.yaml"), text)
            .err()
            .expect("refused");
        let ManifestError::Invalid { message, .. } = &e else {
            panic!("{e}");
        };
        assert!(!message.contains("secret"), "{message}");
        assert!(
            message.starts_with("found a string, expected a mapping"),
            "{message}"
        );
    }

    /// Fuzz finding 5 (docs/RELIABILITY.md): duplicate keys in a mapping
    /// read as JSON were kept last-wins.
    #[test]
    fn a_key_given_twice_is_refused_with_the_place() {
        let text = "metadata: { name: a, version: 1.0.0, description: d }\n\
                    spec:\n  executable: { type: component, path: a.wasm }\n  \
                    parameters: { type: object, additionalProperties: false, additionalProperties: true }\n";
        let e = from_yaml::<super::super::raw::RawManifest>(Path::new("/m.yaml"), text)
            .err()
            .expect("refused");
        let ManifestError::Invalid { field, message, .. } = &e else {
            panic!("{e}");
        };
        assert_eq!(field, "spec.parameters", "{e}");
        assert!(message.contains("twice"), "{e}");
    }

    /// Fuzz finding 7 (docs/RELIABILITY.md): every file and every nested
    /// block that was not a mapping got the manifest's hint.
    #[test]
    fn only_a_manifest_is_told_what_a_manifest_has() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct AgentsFile {
            agents: Vec<String>,
        }
        let hint = "a Toka manifest has";
        let message = |e: ManifestError| match e {
            ManifestError::Invalid { message, .. } => message,
            other => panic!("{other}"),
        };
        let agents = from_yaml::<AgentsFile>(Path::new("/agents.yaml"), "[1]\n")
            .err()
            .map(message)
            .expect("refused");
        assert_eq!(agents, "found a list, expected a mapping of fields");
        let nested = from_yaml::<super::super::raw::RawManifest>(
            Path::new("/m.yaml"),
            "metadata: { name: a, version: 1.0.0, description: d }\nspec: 5\n",
        )
        .err()
        .map(message)
        .expect("refused");
        assert!(!nested.contains(hint), "{nested}");
        assert!(nested.contains("expected a mapping of fields"), "{nested}");
        let top = from_yaml::<super::super::raw::RawManifest>(Path::new("/m.yaml"), "5\n")
            .err()
            .map(message)
            .expect("refused");
        assert!(top.contains(hint), "{top}");
    }

    #[test]
    fn short_quotes_are_kept_whole() {
        let m = "`abc` is not a size: write 65536, `64MiB`";
        assert_eq!(shorten_quoted(m), m);
    }
}
