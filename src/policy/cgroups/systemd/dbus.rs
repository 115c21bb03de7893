//! systemd's manager over D-Bus (zbus, blocking): PID 1 through the system bus, or, for a
//! non-root caller, the caller's own user instance (`systemd --user`) through its session bus,
//! as runc does rootless. Every call names the unit; a job is waited for by polling it (no signal subscription: the logic stays in one
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

/// What needs no connection: a host booted with systemd, and for the user instance a session
/// bus to reach it by.
pub fn precheck(user: bool) -> Result<()> {
    address(user).map(|_| ())
}

/// The bus to reach the chosen instance by, and its name for errors, once the host is known to
/// run systemd (and, for PID 1, the caller to be root).
fn address(user: bool) -> Result<(String, &'static str)> {
    if !user && !nix::unistd::geteuid().is_root() {
        return Err(Error::Unsupported(
            "--systemd-cgroup through systemd's system instance as a non-root user".into(),
        ));
    }
    if !std::path::Path::new(BOOTED).exists() {
        return Err(err(format!(
            "systemd is not running on this host ({BOOTED} missing): --systemd-cgroup needs it"
        )));
    }
    Ok(match user {
        true => (session_bus()?, "session bus"),
        false => (format!("unix:path={SYSTEM_BUS}"), "system bus"),
    })
}

/// The caller's session bus, where its user instance of systemd answers: the address in
/// `DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus` (`/run/user/<uid>/bus`), the socket
/// dbus-user-session (or dbus-broker's user unit) serves.
fn session_bus() -> Result<String> {
    if let Some(a) = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty())
    {
        return Ok(a);
    }
    let dir = std::env::var("XDG_RUNTIME_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| format!("/run/user/{}", nix::unistd::geteuid()));
    let path = std::path::Path::new(&dir).join("bus");
    if !path.exists() {
        return Err(err(format!(
            "no D-Bus session bus at {} (set DBUS_SESSION_BUS_ADDRESS, or run systemd --user with \
             dbus-user-session): --systemd-cgroup as uid {} talks to that user's systemd instance",
            path.display(),
            nix::unistd::geteuid()
        )));
    }
    Ok(format!("unix:path={}", path.display()))
}

/// A connection to systemd: PID 1, or the caller's user instance.
pub struct Systemd {
    conn: Connection,
}

impl Systemd {
    /// Connects through the system bus, or (`user`) the caller's session bus. No systemd (not
    /// booted with it, or nothing answering) is an error naming the path that says so.
    pub fn connect(user: bool) -> Result<Systemd> {
        // Not systemd's private socket /run/systemd/private (runc's first choice as root): its
        // replies carry a well-known name as sender, which zbus 5 refuses (a panic in its
        // reader task, and the call times out). The system bus needs dbus-daemon running.
        let (address, what) = address(user)?;
        zbus::blocking::connection::Builder::address(address.as_str())
            .map(|b| b.method_timeout(Duration::from_secs(10)))
            .and_then(|b| b.build())
            .map(|conn| Systemd { conn })
            .map_err(|e| {
                err(format!(
                    "cannot reach systemd over the D-Bus {what} {address}: {e}"
                ))
            })
    }

    /// The cgroup systemd gave the unit (its `ControlGroup`, below the v2 root).
    pub fn control_group(&self, unit: &str) -> Result<String> {
        let path: OwnedObjectPath = self
            .call("GetUnit", &(unit,))
            .and_then(|r| r.body().deserialize())
            .map_err(|e| err(format!("GetUnit {unit}: {e}")))?;
        let v = self
            .get_property(&path, "org.freedesktop.systemd1.Scope", "ControlGroup")
            .map_err(|e| err(format!("{unit} ControlGroup: {e}")))?;
        String::try_from(v).map_err(|e| err(format!("{unit} ControlGroup: {e}")))
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
