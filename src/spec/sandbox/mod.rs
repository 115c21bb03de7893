//! `ward sandbox` (issue 18) in the spec: the settings file of Anthropic's sandbox runtime
//! (srt, npm `@anthropic-ai/sandbox-runtime`), read as srt 0.0.78 reads it on Linux, into the
//! lists the sandbox enforces. See `settings` for what each key means and what differs.

mod glob;
pub mod settings;

pub use settings::{parse, FsSettings, NetworkSettings, Settings, DEFAULT_FILE};
