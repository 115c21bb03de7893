//! Test support: a small JSON Schema validator for ward's schema files (spec/*.schema.json),
//! shared by the tests that check examples and translator output against them.

use serde_json::Value;

/// Validates `v` against `schema` (a part of `root`, for `$ref`), for the subset of JSON Schema
/// ward's schema files use: type, required, properties, additionalProperties (bool or schema),
/// enum, items, uniqueItems, minItems, minProperties, minimum, maximum, pattern, minLength,
/// maxLength, $ref. Errors
/// carry the JSON path (`$.network.allowedDomains[2]: ...`).
pub fn validate(root: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(root, |s, k| &s[k]));
        return match target {
            Some(t) if !t.is_null() => validate(root, t, v, at),
            _ => vec![format!("{at}: unresolved $ref {r}")],
        };
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            _ => false,
        };
        if !ok {
            return vec![format!("{at}: expected {t}, got {v}")];
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(v) {
            errs.push(format!("{at}: {v} not in {options:?}"));
        }
    }
    if let Some(n) = v.as_f64() {
        if schema
            .get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n < m)
        {
            errs.push(format!("{at}: {n} below minimum"));
        }
        if schema
            .get("maximum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n > m)
        {
            errs.push(format!("{at}: {n} above maximum"));
        }
    }
    if let Some(s) = v.as_str() {
        if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
            if !regex::Regex::new(p).expect("pattern compiles").is_match(s) {
                errs.push(format!("{at}: {s:?} does not match {p}"));
            }
        }
        let n = s.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
        {
            errs.push(format!("{at}: shorter than minLength"));
        }
        if schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n > m)
        {
            errs.push(format!("{at}: longer than maxLength"));
        }
    }
    if let Some(arr) = v.as_array() {
        let unique = schema.get("uniqueItems") == Some(&Value::Bool(true));
        if unique && (1..arr.len()).any(|i| arr[..i].contains(&arr[i])) {
            errs.push(format!("{at}: items are not unique"));
        }
        if schema
            .get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| (arr.len() as u64) < m)
        {
            errs.push(format!("{at}: fewer than minItems"));
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            errs.extend(validate(root, items, x, &format!("{at}[{i}]")));
        }
    }
    if let Some(obj) = v.as_object() {
        if schema
            .get("minProperties")
            .and_then(Value::as_u64)
            .is_some_and(|m| (obj.len() as u64) < m)
        {
            errs.push(format!("{at}: fewer than minProperties"));
        }
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(k) = req.as_str().filter(|k| !obj.contains_key(*k)) {
                errs.push(format!("{at}: missing {k}"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, x) in obj {
            match (
                props.and_then(|p| p.get(k)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => errs.extend(validate(root, s, x, &format!("{at}.{k}"))),
                (None, Some(Value::Bool(false))) => errs.push(format!("{at}: unexpected {k}")),
                (None, Some(s)) if s.is_object() => {
                    errs.extend(validate(root, s, x, &format!("{at}.{k}")))
                }
                _ => {}
            }
        }
    }
    errs
}
