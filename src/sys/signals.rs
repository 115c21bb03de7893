//! Signals as runc's command line names them (Linux and macOS).

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// Parses a signal as runc does: `KILL`, `SIGKILL` or `9`.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        // 0: no signal, only the check that the process exists (`kill ID 0`, as kill(2)).
        if n == 0 {
            return Ok(0);
        }
        // Real-time signals are valid too (Linux; macOS has none).
        #[cfg(target_os = "linux")]
        if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        return Signal::try_from(n)
            .map(|sig| sig as i32)
            .map_err(|_| Error::BadState(format!("unknown signal {s:?}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| Error::BadState(format!("unknown signal {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_like_runc() {
        assert_eq!(parse_signal("KILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("SIGTERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("hup").unwrap(), libc::SIGHUP);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
        assert_eq!(parse_signal("0").unwrap(), 0);
    }
}
