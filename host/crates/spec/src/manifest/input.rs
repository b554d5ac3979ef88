//! Checks of a tool's input against its manifest's JSON Schema.

/// Checks a tool's input: the top level of `value` against `schema`: an object, with the
/// required properties, each of the declared JSON type. Deeper checks are
/// the tool's job; this catches the mistakes a person makes at a prompt.
pub fn check_input(schema: &serde_json::Value, value: &serde_json::Value) -> Result<(), String> {
    let Some(obj) = value.as_object() else {
        return Err("the input must be a JSON object".into());
    };
    let props = schema.get("properties").and_then(|p| p.as_object());
    if let Some(required) = schema.get("required").and_then(|r| r.as_array()) {
        for key in required.iter().filter_map(|k| k.as_str()) {
            if !obj.contains_key(key) {
                return Err(format!(
                    "the input lacks the required property `{key}`: add --param {key}=... or include it in --input"
                ));
            }
        }
    }
    for (key, v) in obj {
        let Some(want) = props
            .and_then(|p| p.get(key))
            .and_then(|d| d.get("type"))
            .and_then(|t| t.as_str())
        else {
            continue;
        };
        let ok = match want {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            "null" => v.is_null(),
            _ => true,
        };
        if !ok {
            return Err(format!(
                "input property `{key}` must be of type {want}, not {v}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_input;
    use serde_json::json;

    #[test]
    fn input_checks_name_the_property() {
        let schema = json!({"type":"object","properties":{"name":{"type":"string"},"n":{"type":"integer"}},"required":["name"]});
        assert!(check_input(&schema, &json!({"name": "Ada"})).is_ok());
        let e = check_input(&schema, &json!({})).unwrap_err();
        assert!(e.contains("`name`") && e.contains("--param name="), "{e}");
        let e = check_input(&schema, &json!({"name": "x", "n": "3"})).unwrap_err();
        assert!(e.contains("`n`") && e.contains("integer"), "{e}");
        assert!(check_input(&schema, &json!([1])).is_err());
    }
}
