//! systemd's manager over D-Bus (zbus, blocking), through the system bus. Every call names the
//! unit; a job is waited for by polling it (no signal subscription: the logic stays in one
//! thread, and a JobRemoved missed between the call and the match cannot hang create).
//!
//! zbus's blocking calls run on its own executor and reactor threads: the caller must not
//! fork (other than fork+exec) after the first call. `create` forks init before connecting.

use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use super::props::{Prop, Props};
use crate::error::{Error, Result};

const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
const BOOTED: &str = "/run/systemd/system";
const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a job (start or stop of a scope) may take before ward gives up.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

fn err(msg: String) -> Error {
    Error::Systemd(msg)
}

/// What needs no connection: root (the user instance is not spoken to yet), and a host booted
/// with systemd.
pub fn precheck() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Unsupported(
            "--systemd-cgroup as a non-root user (systemd's user instance over the session bus)"
                .into(),
        ));
    }
    if !std::path::Path::new(BOOTED).exists() {
        return Err(err(format!(
            "systemd is not running on this host ({BOOTED} missing): --systemd-cgroup needs it"
        )));
    }
    Ok(())
}

/// A connection to systemd (PID 1).
pub struct Systemd {
    conn: Connection,
}

impl Systemd {
    /// Connects through the system bus. No systemd (not booted with it, or nothing
    /// answering) is an error naming the path that says so.
    pub fn connect() -> Result<Systemd> {
        precheck()?;
        // Not systemd's private socket /run/systemd/private (runc's first choice as root): its
        // replies carry a well-known name as sender, which zbus 5 refuses (a panic in its
        // reader task, and the call times out). The system bus needs dbus-daemon running.
        zbus::blocking::connection::Builder::address(format!("unix:path={SYSTEM_BUS}").as_str())
            .map(|b| b.method_timeout(Duration::from_secs(10)))
            .and_then(|b| b.build())
            .map(|conn| Systemd { conn })
            .map_err(|e| {
                err(format!(
                    "cannot reach systemd over the D-Bus system bus {SYSTEM_BUS}: {e}"
                ))
            })
    }

    fn call<B>(&self, method: &str, body: &B) -> zbus::Result<zbus::message::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
    }

    /// StartTransientUnit of the scope with `pid` in it and `props`, and waits until the job is
    /// done and the unit active (systemd has moved `pid` into the scope's cgroup by then).
    pub fn start_scope(&self, unit: &str, slice: &str, pid: i32, props: &Props) -> Result<()> {
        let mut all: Props = vec![
            ("Description", Prop::Str(format!("ward container {unit}"))),
            ("Slice", Prop::Str(slice.to_string())),
            ("Delegate", Prop::Bool(true)),
            ("PIDs", Prop::Pids(vec![pid as u32])),
            // The scope outlives ward's create process; systemd must not stop it when that
            // process's cgroup or job tracking goes away.
            ("DefaultDependencies", Prop::Bool(false)),
        ];
        all.extend(props.iter().cloned());
        let aux: Vec<(&str, Vec<(&str, Value)>)> = Vec::new();
        let reply = self
            .call("StartTransientUnit", &(unit, "replace", values(&all), aux))
            .map_err(|e| err(format!("StartTransientUnit {unit} (slice {slice}): {e}")))?;
        let job: OwnedObjectPath = reply
            .body()
            .deserialize()
            .map_err(|e| err(format!("StartTransientUnit {unit}: reply: {e}")))?;
        self.wait_job(&job, unit, "start")?;
        match self.active_state(unit)? {
            Some(s) if s == "active" => Ok(()),
            s => Err(err(format!(
                "{unit} is {} after its start job, not active",
                s.unwrap_or_else(|| "gone".into())
            ))),
        }
    }

    /// SetUnitProperties (runtime): systemd keeps the new limits across a daemon-reload.
    pub fn set_properties(&self, unit: &str, props: &Props) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        self.call("SetUnitProperties", &(unit, true, values(props)))
            .map(|_| ())
            .map_err(|e| err(format!("SetUnitProperties {unit}: {e}")))
    }

    /// StopUnit, then waits until systemd has forgotten the unit (a failed one is reset).
    /// A unit already gone is fine.
    pub fn stop_and_forget(&self, unit: &str) -> Result<()> {
        match self.call("StopUnit", &(unit, "replace")) {
            Ok(reply) => {
                if let Ok(job) = reply.body().deserialize::<OwnedObjectPath>() {
                    self.wait_job(&job, unit, "stop")?;
                }
            }
            Err(e) if no_such_unit(&e) => return Ok(()),
            Err(e) => return Err(err(format!("StopUnit {unit}: {e}"))),
        }
        let start = Instant::now();
        loop {
            match self.active_state(unit)? {
                None => return Ok(()),
                Some(s) if s == "failed" => {
                    let _ = self.call("ResetFailedUnit", &(unit,));
                }
                Some(_) => {}
            }
            if start.elapsed() > JOB_TIMEOUT {
                return Err(err(format!(
                    "{unit} still known to systemd 30 s after its stop"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The unit's ActiveState; None once systemd does not know it (any more).
    fn active_state(&self, unit: &str) -> Result<Option<String>> {
        let path: OwnedObjectPath = match self.call("GetUnit", &(unit,)) {
            Ok(r) => r
                .body()
                .deserialize()
                .map_err(|e| err(format!("GetUnit {unit}: reply: {e}")))?,
            Err(e) if no_such_unit(&e) => return Ok(None),
            Err(e) => return Err(err(format!("GetUnit {unit}: {e}"))),
        };
        let state = self
            .get_property(&path, "org.freedesktop.systemd1.Unit", "ActiveState")
            .map_err(|e| err(format!("{unit} ActiveState: {e}")))?;
        Ok(Some(
            String::try_from(state).unwrap_or_else(|_| "unknown".into()),
        ))
    }

    fn get_property(
        &self,
        path: &OwnedObjectPath,
        iface: &str,
        name: &str,
    ) -> zbus::Result<OwnedValue> {
        let r = self.conn.call_method(
            Some(DEST),
            path.as_str(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(iface, name),
        )?;
        r.body().deserialize::<OwnedValue>()
    }

    /// Polls the job object until systemd drops it (the job is finished).
    fn wait_job(&self, job: &OwnedObjectPath, unit: &str, what: &str) -> Result<()> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        while self
            .get_property(job, "org.freedesktop.systemd1.Job", "State")
            .is_ok()
        {
            if start.elapsed() > JOB_TIMEOUT {
                return Err(err(format!(
                    "the {what} job of {unit} did not finish in 30 s"
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        Ok(())
    }
}

fn no_such_unit(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::MethodError(name, _, _) if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit")
}

fn values(props: &Props) -> Vec<(&str, Value<'_>)> {
    props
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Prop::U64(n) => Value::from(*n),
                Prop::Str(s) => Value::from(s.as_str()),
                Prop::Bool(b) => Value::from(*b),
                Prop::Bytes(b) => Value::from(b.clone()),
                Prop::Pids(p) => Value::from(p.clone()),
                Prop::Devices(d) => Value::from(d.clone()),
            };
            (*k, v)
        })
        .collect()
}
