//! Logs in runc's shapes: `--log-format json` writes one `{"level","msg","time"}` object per line
//! (containerd's shim reads the last error line of log.json and shows its `msg`), `text` writes
//! logrus-style `time="…" level=… msg="…"` lines.
//!
//! Writes are synchronous and unbuffered from the calling thread: the create and exec paths must
//! stay single-threaded (setns into user/mount namespaces fails in a multi-threaded process).

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

struct RuncLayer {
    out: &'static Mutex<Sink>,
    format: LogFormat,
    max: Level,
}

/// Where log lines go: the `--log` file ward opened, its own copy of the caller's stderr, or
/// (in a container's init) to the `ward create` that logs them for it.
enum Sink {
    LogFile(File),
    Stderr(File),
    Forward(Forwarder),
    Closed,
}

/// Hands one record (level, message) to another process.
pub type Forwarder = Box<dyn Fn(&str, &str) + Send>;

static SINK: std::sync::OnceLock<Mutex<Sink>> = std::sync::OnceLock::new();

#[derive(Default)]
struct Fields {
    msg: String,
    extra: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            self.extra
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            self.extra
                .push((field.name().to_string(), value.to_string()));
        }
    }
}

impl<S: Subscriber> Layer<S> for RuncLayer {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        *meta.level() <= self.max
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        // logrus (runc) names WARN "warning".
        let level = match *event.metadata().level() {
            Level::WARN => "warning".to_string(),
            l => l.as_str().to_ascii_lowercase(),
        };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let line = format_line(self.format, &level, &f.msg, &f.extra, &time);
        if let Ok(mut out) = self.out.lock() {
            // A log line that cannot be written must not turn into a failure of the operation.
            match &mut *out {
                Sink::LogFile(f) | Sink::Stderr(f) => {
                    let _ = f.write_all(line.as_bytes());
                }
                Sink::Forward(send) => send(&level, &f.msg),
                Sink::Closed => {}
            }
        }
    }
}

fn format_line(
    format: LogFormat,
    level: &str,
    msg: &str,
    extra: &[(String, String)],
    time: &str,
) -> String {
    match format {
        LogFormat::Json => {
            let mut obj = serde_json::Map::new();
            obj.insert("level".into(), level.into());
            obj.insert("msg".into(), msg.into());
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone().into());
            }
            obj.insert("time".into(), time.into());
            let mut s = serde_json::Value::Object(obj).to_string();
            s.push('\n');
            s
        }
        LogFormat::Text => {
            let mut s = format!("time={time:?} level={level} msg={msg:?}");
            for (k, v) in extra {
                let _ = write!(s, " {k}={v:?}");
            }
            s.push('\n');
            s
        }
    }
}

/// Installs the global subscriber. `log` is the `--log` path (appended to, created 0600 if
/// missing); `None` logs to stderr.
pub fn init(log: Option<&std::path::Path>, format: LogFormat, debug: bool) -> crate::Result<()> {
    let max = if debug { Level::DEBUG } else { Level::INFO };
    init_at(log, format, max)
}

/// `init` with the most verbose level kept (`ward sandbox`: errors only unless --debug; its
/// user reads the command's output, not the runtime's notes).
pub fn init_at(log: Option<&std::path::Path>, format: LogFormat, max: Level) -> crate::Result<()> {
    use crate::error::IoContext;
    let out = match log {
        Some(path) => Sink::LogFile(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .io("open log file", path)?,
        ),
        None => Sink::Stderr(dup_stderr().io("dup", "stderr")?),
    };
    if SINK.set(Mutex::new(out)).is_err() {
        // A second init (tests calling into the library) keeps the first subscriber.
        return Ok(());
    }
    let Some(out) = SINK.get() else {
        return Ok(());
    };
    let layer = RuncLayer { out, format, max };
    // A second init (tests calling into the library) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(())
}

/// For a process that is about to become the container's (init, exec's process): its log
/// records go to `forward` (the ward that forked it, which logs them) until `stop_forwarding`,
/// and its own copy of the caller's stderr or its `--log` file is closed, so a container
/// waiting for `start` holds no fd of the caller (a shell's `$(...)` or an engine reading to
/// EOF would hang) and nothing of the host's it could reach through /proc/<pid>/fd.
pub fn for_container_process(forward: Forwarder) {
    if let Some(Ok(mut out)) = SINK.get().map(|s| s.lock()) {
        *out = Sink::Forward(forward);
    }
}

/// Ends forwarding (the other process stops listening): later records are dropped.
pub fn stop_forwarding() {
    if let Some(Ok(mut out)) = SINK.get().map(|s| s.lock()) {
        if matches!(&*out, Sink::Forward(_)) {
            *out = Sink::Closed;
        }
    }
}

/// Logs a record forwarded by another process at its level.
pub fn emit(level: &str, msg: &str) {
    match level {
        "error" => tracing::error!("{msg}"),
        "warn" | "warning" => tracing::warn!("{msg}"),
        "info" => tracing::info!("{msg}"),
        "debug" => tracing::debug!("{msg}"),
        _ => tracing::trace!("{msg}"),
    }
}

/// A duplicate of stderr that does not outlive an execve into the container: std duplicates
/// with F_DUPFD_CLOEXEC on Unix and a non-inheritable handle on Windows.
fn dup_stderr() -> std::io::Result<File> {
    #[cfg(unix)]
    let owned = std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned()?;
    #[cfg(windows)]
    let owned =
        std::os::windows::io::AsHandle::as_handle(&std::io::stderr()).try_clone_to_owned()?;
    Ok(File::from(owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_runc_fields() {
        let line = format_line(LogFormat::Json, "error", "boom \"x\"", &[], "T");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "T");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn text_line_is_logrus_shaped() {
        let line = format_line(
            LogFormat::Text,
            "info",
            "hi",
            &[("id".into(), "c1".into())],
            "T",
        );
        assert_eq!(line, "time=\"T\" level=info msg=\"hi\" id=\"c1\"\n");
    }
}
