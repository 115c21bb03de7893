//! JSON into typed values, with the failing field's full path in the error
//! (`process.user.uid: invalid type: string "zero", expected u32`).

use crate::error::{Error, Result};

/// Parses JSON into `T`, naming the offending field on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| path_error(e, what))?;
    // Only whitespace may follow the value, as serde_json::from_str requires: `{…}{…}` would
    // otherwise run the first object and drop the second unsaid. (runc's json.Decoder ignores
    // what follows; refusing it is a deliberate difference.)
    de.end().map_err(|e| Error::spec(what, e.to_string()))?;
    Ok(value)
}

/// `T` from an already parsed JSON tree, naming the offending field on error.
pub fn from_value<T: serde::de::DeserializeOwned>(v: &serde_json::Value, what: &str) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| path_error(e, what))
}

fn path_error(e: serde_path_to_error::Error<serde_json::Error>, what: &str) -> Error {
    let path = crate::error::excerpt(&e.path().to_string());
    let field = if path == "." {
        what.to_string()
    } else {
        format!("{what}: {path}")
    };
    Error::spec(field, clip_message(&e.into_inner().to_string()))
}

/// serde's message with the input it quotes (`invalid type: string "…", expected u32`) cut to
/// `ECHO_MAX`, keeping the position it ends with (` at line L column C`).
fn clip_message(msg: &str) -> String {
    let (head, tail) = match msg.rfind(" at line ") {
        Some(at) => msg.split_at(at),
        None => (msg, ""),
    };
    format!("{}{tail}", crate::error::excerpt(head))
}
