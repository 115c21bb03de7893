//! The Windows executor: hand [`Documents`] to the Host Compute Service (computecore.dll).
//!
//! The Hcs* functions come from `windows-sys` (Win32::System::HostComputeSystem, generated from
//! Microsoft's metadata, so the signatures are computecore.h's), imported with raw-dylib: no
//! import library is needed, which MinGW does not ship for computecore. Only functions of
//! Windows 10 1809 are used (HcsWaitForProcessExit is newer, and a missing import would stop
//! ward.exe from loading at all), so a process's exit is polled. Every HCS call takes an
//! operation handle and completes through HcsWaitForOperationResult, whose result document is
//! freed with LocalFree. Compiled (checked) only for Windows targets.

use std::io;
use std::time::Duration;

use windows_sys::core::{HRESULT, PWSTR};
use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::System::HostComputeSystem::{
    HcsCloseComputeSystem, HcsCloseOperation, HcsCloseProcess, HcsCreateComputeSystem,
    HcsCreateOperation, HcsCreateProcess, HcsGetProcessProperties, HcsStartComputeSystem,
    HcsTerminateComputeSystem, HcsWaitForOperationResult, HCS_OPERATION, HCS_PROCESS, HCS_SYSTEM,
};

use super::hcs::Documents;

const INFINITE: u32 = 0xFFFF_FFFF;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn check(what: &str, hr: HRESULT, result: &str) -> io::Result<()> {
    if hr < 0 {
        return Err(io::Error::other(format!(
            "{what}: HRESULT {:#010x} {result}",
            hr as u32
        )));
    }
    Ok(())
}

/// Run `call` with a fresh operation, wait for it and return its result document (HCS puts
/// the error's details there too).
fn with_operation(what: &str, call: impl FnOnce(HCS_OPERATION) -> HRESULT) -> io::Result<String> {
    // SAFETY: no context and no callback: the operation is waited for synchronously below.
    let op = unsafe { HcsCreateOperation(std::ptr::null(), None) };
    if op.is_null() {
        return Err(io::Error::other(format!(
            "{what}: HcsCreateOperation failed"
        )));
    }
    let started = call(op);
    let mut result: PWSTR = std::ptr::null_mut();
    // A call that failed started no operation: there is nothing to wait for.
    let waited = if started < 0 {
        started
    } else {
        // SAFETY: `op` is a live operation; `result` receives a LocalAlloc'd string or stays null.
        unsafe { HcsWaitForOperationResult(op, INFINITE, &mut result) }
    };
    let mut document = String::new();
    if !result.is_null() {
        // SAFETY: HCS returns a NUL-terminated UTF-16 string that we own: it is read up to
        // the NUL, then freed exactly once.
        unsafe {
            let len = (0..).take_while(|&i| *result.add(i) != 0).count();
            document = String::from_utf16_lossy(std::slice::from_raw_parts(result, len));
            LocalFree(result.cast());
        }
    }
    // SAFETY: `op` came from HcsCreateOperation and is closed exactly once.
    unsafe { HcsCloseOperation(op) };
    check(what, waited, &document)?;
    Ok(document)
}

/// A created compute system (a container or a utility VM); closed on drop, which ends it
/// (the documents set `ShouldTerminateOnLastHandleClosed`).
pub struct ComputeSystem(HCS_SYSTEM);

impl ComputeSystem {
    pub fn create(id: &str, document: &str) -> io::Result<ComputeSystem> {
        let (id, doc) = (wide(id), wide(document));
        let mut system: HCS_SYSTEM = std::ptr::null_mut();
        // SAFETY: `id` and `doc` are NUL-terminated UTF-16 and outlive the call; `system` is written on success.
        with_operation("HcsCreateComputeSystem", |op| unsafe {
            HcsCreateComputeSystem(id.as_ptr(), doc.as_ptr(), op, std::ptr::null(), &mut system)
        })?;
        Ok(ComputeSystem(system))
    }

    pub fn start(&self) -> io::Result<()> {
        // SAFETY: self.0 is a live compute system handle; no options.
        with_operation("HcsStartComputeSystem", |op| unsafe {
            HcsStartComputeSystem(self.0, op, std::ptr::null())
        })
        .map(drop)
    }

    pub fn terminate(&self) -> io::Result<()> {
        // SAFETY: self.0 is a live compute system handle; no options.
        with_operation("HcsTerminateComputeSystem", |op| unsafe {
            HcsTerminateComputeSystem(self.0, op, std::ptr::null())
        })
        .map(drop)
    }

    /// Start a process from ProcessParameters JSON.
    pub fn create_process(&self, parameters: &str) -> io::Result<Process> {
        let params = wide(parameters);
        let mut process: HCS_PROCESS = std::ptr::null_mut();
        // SAFETY: `params` is NUL-terminated UTF-16 and outlives the call; `process` is written on success.
        with_operation("HcsCreateProcess", |op| unsafe {
            HcsCreateProcess(self.0, params.as_ptr(), op, std::ptr::null(), &mut process)
        })?;
        Ok(Process(process))
    }
}

impl Drop for ComputeSystem {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the handle came from HcsCreateComputeSystem and is closed exactly once.
            unsafe { HcsCloseComputeSystem(self.0) };
        }
    }
}

/// A process in a compute system; the handle is closed on drop.
pub struct Process(HCS_PROCESS);

impl Process {
    /// Poll the process's status (ProcessStatus: `Exited`, `ExitCode`) until it has exited.
    pub fn wait(&self) -> io::Result<u32> {
        loop {
            // SAFETY: self.0 is a live process handle; no property query.
            let doc = with_operation("HcsGetProcessProperties", |op| unsafe {
                HcsGetProcessProperties(self.0, op, std::ptr::null())
            })?;
            let status: serde_json::Value = serde_json::from_str(&doc)
                .map_err(|e| io::Error::other(format!("HcsGetProcessProperties: {e}: {doc}")))?;
            if status["Exited"].as_bool() == Some(true) {
                let code = status["ExitCode"].as_u64().unwrap_or(u64::from(u32::MAX));
                return Ok(u32::try_from(code).unwrap_or(u32::MAX));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the handle came from HcsCreateProcess and is closed exactly once.
            unsafe { HcsCloseProcess(self.0) };
        }
    }
}

/// A running container: its compute systems in creation order (the utility VM first, for
/// Hyper-V) and its first process. Keep it alive for the container's lifetime.
pub struct Running {
    // Fields drop in order: the process handle is closed before the systems end.
    pub process: Process,
    pub systems: Vec<ComputeSystem>,
}

/// Create and start the utility VM (Hyper-V) and the container, then its first process.
pub fn run(id: &str, docs: &Documents) -> io::Result<Running> {
    let mut systems = Vec::new();
    if let Some(vm) = &docs.utility_vm {
        let uvm = ComputeSystem::create(&format!("{id}@vm"), &vm.to_string())?;
        uvm.start()?;
        systems.push(uvm);
    }
    let container = ComputeSystem::create(id, &docs.container.to_string())?;
    container.start()?;
    let process = container.create_process(&docs.process.to_string())?;
    systems.push(container);
    Ok(Running { process, systems })
}

impl Running {
    /// Terminate the container, then the utility VM (the reverse of creation).
    pub fn terminate(&self) -> io::Result<()> {
        self.systems
            .iter()
            .rev()
            .try_for_each(ComputeSystem::terminate)
    }
}
