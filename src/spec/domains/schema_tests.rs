//! spec/interception.schema.json against the examples and the parser: both examples validate,
//! the validator rejects what the schema forbids, and the schema never refuses an entry ward
//! accepts (it is looser: IDNA, public suffixes and port ranges are the parser's).

use regex::Regex;
use serde_json::{json, Value};

use super::{parse_pattern, List};

fn schema() -> Value {
    serde_json::from_str(include_str!("../../../spec/interception.schema.json"))
        .expect("the schema is JSON")
}

/// A validator for the subset of JSON Schema the file uses: type, properties,
/// additionalProperties (bool or schema), items, enum, pattern, minLength, maxLength,
/// uniqueItems, $ref. Errors carry the JSON path.
fn validate(root: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(root, |s, k| &s[k]));
        return match target {
            Some(t) if !t.is_null() => validate(root, t, v, at),
            _ => vec![format!("{at}: unresolved $ref {r}")],
        };
    }
    let mut errs = Vec::new();
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
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
    if let Some(s) = v.as_str() {
        if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
            if !Regex::new(p).expect("pattern compiles").is_match(s) {
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
        if let Some(items) = schema.get("items") {
            for (i, x) in arr.iter().enumerate() {
                errs.extend(validate(root, items, x, &format!("{at}[{i}]")));
            }
        }
        let unique = schema.get("uniqueItems") == Some(&Value::Bool(true));
        if unique && (1..arr.len()).any(|i| arr[..i].contains(&arr[i])) {
            errs.push(format!("{at}: items are not unique"));
        }
    }
    if let Some(obj) = v.as_object() {
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

fn check(doc: &Value) -> Vec<String> {
    let s = schema();
    validate(&s, &s, doc, "$")
}

#[test]
fn both_examples_validate() {
    for (name, text) in [
        (
            "interception.json",
            include_str!("../../../spec/examples/interception.json"),
        ),
        (
            "interception-domains.json",
            include_str!("../../../spec/examples/interception-domains.json"),
        ),
    ] {
        let doc: Value = serde_json::from_str(text).expect("example is JSON");
        let errors = check(&doc);
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn the_schema_refuses_what_it_can_see_is_wrong() {
    for (doc, word) in [
        (
            json!({"network": {"allowedDomains": ["*"]}}),
            "allowedDomains[0]",
        ),
        (
            json!({"network": {"allowedDomains": ["ok.example", "ex*ample.com"]}}),
            "allowedDomains[1]",
        ),
        (
            json!({"network": {"allowedDomains": ["example.com:0"]}}),
            "allowedDomains[0]",
        ),
        (
            json!({"network": {"allowedDomains": ["::1"]}}),
            "allowedDomains[0]",
        ),
        (
            json!({"network": {"allowedDomains": ["https://example.com"]}}),
            "allowedDomains[0]",
        ),
        (
            json!({"network": {"deniedDomains": ["a.*.example"]}}),
            "deniedDomains[0]",
        ),
        (
            json!({"network": {"allowedDomains": "example.com"}}),
            "allowedDomains",
        ),
        (
            json!({"network": {"deniedDomainReasons": {"a.example": ""}}}),
            "a.example",
        ),
        (
            json!({"network": {"deniedDomainReasons": {"a.example": "two\nlines"}}}),
            "a.example",
        ),
        (json!({"network": {"proxyEnv": "yes"}}), "proxyEnv"),
        (
            json!({"network": {"allowedDomain": []}}),
            "unexpected allowedDomain",
        ),
    ] {
        let errors = check(&doc);
        assert!(errors.iter().any(|e| e.contains(word)), "{doc}: {errors:?}");
    }
    assert!(check(&json!({"network": {"deniedDomains": ["*", "*:22", "*.com"]}})).is_empty());
}

/// Every entry the parser accepts, the schema accepts too (an editor never flags a config
/// that ward runs).
#[test]
fn the_schema_accepts_every_entry_the_parser_accepts() {
    let s = schema();
    let allowed = Regex::new(s["$defs"]["allowedDomain"]["pattern"].as_str().unwrap()).unwrap();
    let denied = Regex::new(s["$defs"]["deniedDomain"]["pattern"].as_str().unwrap()).unwrap();
    let pieces = [
        "a", "Z", "0", "1", "9", "443", "65535", ".", "*", "*.", ":", "[", "]", "::", "::1",
        "ffff:", "-", "_", "ü", "É", "。", "ｅ", "xn--", "com", "co.uk", "example", "127",
        "1.2.3.4", " ", "%", "/",
    ];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut seen = 0;
    for _ in 0..50_000 {
        let text: String = (0..1 + next(7))
            .map(|_| pieces[next(pieces.len())])
            .collect();
        if parse_pattern(&text, List::Allowed).is_ok() {
            seen += 1;
            assert!(allowed.is_match(&text), "allowedDomains {text:?}");
        }
        if parse_pattern(&text, List::Denied).is_ok() {
            assert!(denied.is_match(&text), "deniedDomains {text:?}");
        }
    }
    assert!(seen > 1000, "only {seen} accepted entries generated");
}
