//! The Windows executor: hand [`Documents`] to the Host Compute Service (computecore.dll).
//!
//! The computecore functions ward needs (create/start/terminate a compute system, create a
//! process, and the operation and handle plumbing around them) are declared by hand because `windows-sys`
//! cannot be added this round; the lead will revisit. Signatures are those of computecore.h
//! (Windows 10 1809+). Every HCS call takes an operation handle and completes through
//! HcsWaitForOperationResult, whose result document is freed with LocalFree. Never compiled
//! on Linux.

use std::ffi::c_void;
use std::io;

use super::hcs::Documents;

type Handle = *mut c_void;
type HResult = i32;
const INFINITE: u32 = 0xFFFF_FFFF;

#[link(name = "computecore")]
extern "system" {
    fn HcsCreateOperation(context: *const c_void, callback: *const c_void) -> Handle;
    fn HcsCloseOperation(operation: Handle);
    fn HcsWaitForOperationResult(
        operation: Handle,
        timeout_ms: u32,
        result: *mut *mut u16,
    ) -> HResult;
    fn HcsCreateComputeSystem(
        id: *const u16,
        config: *const u16,
        operation: Handle,
        sd: *const c_void,
        system: *mut Handle,
    ) -> HResult;
    fn HcsStartComputeSystem(system: Handle, operation: Handle, options: *const u16) -> HResult;
    fn HcsTerminateComputeSystem(system: Handle, operation: Handle, options: *const u16)
        -> HResult;
    fn HcsCreateProcess(
        system: Handle,
        params: *const u16,
        operation: Handle,
        sd: *const c_void,
        process: *mut Handle,
    ) -> HResult;
    fn HcsCloseComputeSystem(system: Handle);
    fn HcsCloseProcess(process: Handle);
}

#[link(name = "kernel32")]
extern "system" {
    fn LocalFree(mem: *mut c_void) -> *mut c_void;
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn check(what: &str, hr: HResult) -> io::Result<()> {
    if hr < 0 {
        return Err(io::Error::other(format!(
            "{what}: HRESULT {:#010x}",
            hr as u32
        )));
    }
    Ok(())
}

/// Run `call` with a fresh operation and wait for it; the result document is discarded.
fn with_operation(what: &str, call: impl FnOnce(Handle) -> HResult) -> io::Result<()> {
    // SAFETY: no context and no callback: the operation is waited for synchronously below.
    let op = unsafe { HcsCreateOperation(std::ptr::null(), std::ptr::null()) };
    if op.is_null() {
        return Err(io::Error::other(format!(
            "{what}: HcsCreateOperation failed"
        )));
    }
    let mut result: *mut u16 = std::ptr::null_mut();
    let started = check(what, call(op));
    // SAFETY: `op` is a live operation; `result` receives a LocalAlloc'd string or stays null.
    let waited = started.and_then(|()| {
        check(what, unsafe {
            HcsWaitForOperationResult(op, INFINITE, &mut result)
        })
    });
    // SAFETY: `result` is null or owned by us; `op` is closed exactly once.
    unsafe {
        if !result.is_null() {
            LocalFree(result.cast());
        }
        HcsCloseOperation(op);
    }
    waited
}

/// A created compute system (a container or a utility VM); closed on drop.
pub struct ComputeSystem(Handle);

impl ComputeSystem {
    pub fn create(id: &str, document: &str) -> io::Result<ComputeSystem> {
        let (id, doc) = (wide(id), wide(document));
        let mut system: Handle = std::ptr::null_mut();
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
    }

    pub fn terminate(&self) -> io::Result<()> {
        // SAFETY: self.0 is a live compute system handle; no options.
        with_operation("HcsTerminateComputeSystem", |op| unsafe {
            HcsTerminateComputeSystem(self.0, op, std::ptr::null())
        })
    }

    /// Start a process from ProcessParameters JSON; the process handle is closed at once
    /// (the compute system keeps the process; ward tracks the container, not the handle).
    pub fn create_process(&self, parameters: &str) -> io::Result<()> {
        let params = wide(parameters);
        let mut process: Handle = std::ptr::null_mut();
        // SAFETY: `params` is NUL-terminated UTF-16 and outlives the call; `process` is written on success.
        with_operation("HcsCreateProcess", |op| unsafe {
            HcsCreateProcess(self.0, params.as_ptr(), op, std::ptr::null(), &mut process)
        })?;
        if !process.is_null() {
            // SAFETY: `process` was returned by HcsCreateProcess and is closed once.
            unsafe { HcsCloseProcess(process) };
        }
        Ok(())
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

/// Create and start the utility VM (Hyper-V) and the container, then its first process.
/// Returns the systems in creation order: keep them alive for the container's lifetime.
pub fn run(id: &str, docs: &Documents) -> io::Result<Vec<ComputeSystem>> {
    let mut systems = Vec::new();
    if let Some(vm) = &docs.utility_vm {
        let uvm = ComputeSystem::create(&format!("{id}@vm"), &vm.to_string())?;
        uvm.start()?;
        systems.push(uvm);
    }
    let container = ComputeSystem::create(id, &docs.container.to_string())?;
    container.start()?;
    container.create_process(&docs.process.to_string())?;
    systems.push(container);
    Ok(systems)
}
