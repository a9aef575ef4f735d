//! `DefinitionSubstitutions`: `${Name}` placeholders in the definition's string values.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::LoadError;

/// Replaces every `${Name}` in the string values of `document` with `substitutions[Name]`.
/// A `${` not followed by a name and `}` is left as written; an unknown name is an error
/// naming the state and field it is in.
pub(crate) fn substitute(
    document: &mut Value,
    substitutions: &BTreeMap<String, String>,
) -> Result<(), LoadError> {
    walk(document, &mut Vec::new(), substitutions)
}

fn walk(
    value: &mut Value,
    location: &mut Vec<String>,
    substitutions: &BTreeMap<String, String>,
) -> Result<(), LoadError> {
    match value {
        Value::String(text) => {
            if let Some(replaced) =
                replace(text, substitutions).map_err(|name| unknown(location, &name))?
            {
                *text = replaced;
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                location.push(format!("[{index}]"));
                walk(item, location, substitutions)?;
                location.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                location.push(key.clone());
                walk(item, location, substitutions)?;
                location.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// The text with its placeholders replaced (`None` when it has none), or the unknown name.
fn replace(text: &str, substitutions: &BTreeMap<String, String>) -> Result<Option<String>, String> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            let value = substitutions.get(name).ok_or_else(|| name.to_owned())?;
            out.push_str(value);
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Some(out))
}

/// The error for an unknown placeholder at `location` (keys from the document root).
fn unknown(location: &[String], name: &str) -> LoadError {
    let message = format!("no substitution is defined for ${{{name}}}");
    match location {
        [states, state, rest @ ..] if states == "States" => {
            LoadError::new(Some(state), join(rest), message)
        }
        _ => LoadError::new(None, join(location), message),
    }
}

/// `a.b[0].c` from its segments.
fn join(segments: &[String]) -> String {
    let mut out = String::new();
    for segment in segments {
        if !out.is_empty() && !segment.starts_with('[') {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subs() -> BTreeMap<String, String> {
        BTreeMap::from([(
            "Fn".to_owned(),
            "arn:aws:lambda:eu-west-1:123456789012:function:f".to_owned(),
        )])
    }

    #[test]
    fn replaces_placeholders_in_strings_only() {
        let mut doc = json!({"States": {"A": {"Parameters": {"FunctionName": "${Fn}", "x": "a ${Fn} b", "${Fn}": 1}}}});
        substitute(&mut doc, &subs()).unwrap();
        assert_eq!(
            doc["States"]["A"]["Parameters"]["FunctionName"],
            "arn:aws:lambda:eu-west-1:123456789012:function:f"
        );
        assert_eq!(
            doc["States"]["A"]["Parameters"]["x"],
            "a arn:aws:lambda:eu-west-1:123456789012:function:f b"
        );
        assert_eq!(doc["States"]["A"]["Parameters"]["${Fn}"], 1);
    }

    #[test]
    fn leaves_non_placeholders() {
        let mut doc = json!({"a": "cost: ${ 5 } and ${", "b": "${}"});
        substitute(&mut doc, &subs()).unwrap();
        assert_eq!(doc, json!({"a": "cost: ${ 5 } and ${", "b": "${}"}));
    }

    #[test]
    fn unknown_name_names_state_and_field() {
        let mut doc = json!({"States": {"A": {"Parameters": {"Payload": [{"f": "${Nope}"}]}}}});
        let error = substitute(&mut doc, &subs()).unwrap_err();
        assert_eq!(error.state.as_deref(), Some("A"));
        assert_eq!(error.field, "Parameters.Payload[0].f");
        assert!(error.message.contains("${Nope}"));
    }
}
