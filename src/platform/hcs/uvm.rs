//! The utility VM of a Hyper-V isolated container, after hcsshim's `uvm/create_wcow.go`:
//! UEFI boot of the utility VM image from a VSMB share, the scratch disk on SCSI 0:0, the
//! container's layers and mounts as further VSMB shares, and the container's CPU and memory
//! limits applied to the VM.
//!
//! Honest limits: hcsshim boots from `<UtilityVM>\Files` and creates the VM's scratch by copying
//! the image's template `sandbox.vhdx`; the executor must do that copy (it is I/O, not
//! translation). The defaults (2 vCPUs, 1024 MB) are hcsshim's for Windows utility VMs.

use oci_spec::runtime::Windows;
use serde_json::{json, Map, Value};

use super::{schema_version, Result};

const DEFAULT_MEMORY_MB: u64 = 1024;
const DEFAULT_PROCESSORS: u64 = 2;

/// A read-only (or not) VSMB share of a host folder into the utility VM.
pub(super) fn share(name: &str, host_path: &str, read_only: bool) -> Value {
    json!({
        "Name": name,
        "Path": host_path,
        "Options": {
            "ReadOnly": read_only,
            "PseudoOplocks": true,
            "TakeBackupPrivilege": true,
            "CacheIo": true,
            "ShareRead": true,
        }
    })
}

/// Where the container's scratch volume is mounted inside the utility VM.
pub(super) fn scratch_in_guest(id: &str) -> String {
    // The id is the caller's (validated by `create`); strip separators so it stays one segment.
    let clean: String = id
        .chars()
        .filter(|c| !matches!(c, '\\' | '/' | ':'))
        .collect();
    format!(r"C:\c\{clean}\scratch")
}

/// The utility VM's ComputeSystem document.
pub(super) fn document(
    win: &Windows,
    scratch_folder: &str,
    layers: &[String],
    memory_mb: Option<u64>,
    processor: Map<String, Value>,
    mut shares: Vec<Value>,
) -> Result<Value> {
    let image = match win
        .hyperv()
        .as_ref()
        .and_then(|h| h.utility_vm_path().clone())
        .filter(|p| !p.is_empty())
    {
        Some(path) => path,
        // hcsshim looks for the UtilityVM folder in the layers; the base layer carries it.
        None => format!(
            r"{}\UtilityVM",
            layers
                .last()
                .map(String::as_str)
                .unwrap_or_default()
                .trim_end_matches('\\')
        ),
    };
    shares.insert(
        0,
        share(
            "os",
            &format!(r"{}\Files", image.trim_end_matches('\\')),
            true,
        ),
    );
    let mut cpu = Map::new();
    cpu.insert(
        "Count".into(),
        json!(processor
            .get("Count")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_PROCESSORS)),
    );
    if let Some(max) = processor.get("Maximum") {
        cpu.insert("Limit".into(), max.clone());
    }
    if let Some(weight) = processor.get("Weight") {
        cpu.insert("Weight".into(), weight.clone());
    }
    Ok(json!({
        "Owner": "ward",
        "SchemaVersion": schema_version(),
        "ShouldTerminateOnLastHandleClosed": true,
        "VirtualMachine": {
            "StopOnReset": true,
            "Chipset": {
                "Uefi": {
                    "BootThis": {
                        "DevicePath": r"\EFI\Microsoft\Boot\bootmgfw.efi",
                        "DeviceType": "VmbFs"
                    }
                }
            },
            "ComputeTopology": {
                "Memory": {"SizeInMB": memory_mb.unwrap_or(DEFAULT_MEMORY_MB), "AllowOvercommit": true},
                "Processor": cpu
            },
            "Devices": {
                "Scsi": {
                    "0": {"Attachments": {"0": {
                        "Path": format!(r"{}\vm\sandbox.vhdx", scratch_folder.trim_end_matches('\\')),
                        "Type": "VirtualDisk"
                    }}}
                },
                "HvSocket": {"HvSocketConfig": {"DefaultBindSecurityDescriptor": "D:P(A;;FA;;;SY)(A;;FA;;;BA)"}},
                "VirtualSmb": {"DirectFileMappingInMB": 1024, "Shares": shares}
            }
        }
    }))
}
