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
            message,
        }
    })
}
