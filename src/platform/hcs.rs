//! Spec → HCS schema v2 documents (Windows Host Compute Service).
//!
//! A process-isolated spec (no `windows.hyperv`) becomes one ComputeSystem with a `Container`;
//! a Hyper-V isolated spec becomes a pair: the utility VM (`VirtualMachine`, see `uvm.rs`) and
//! the container hosted in it (`HostingSystemId` + `HostedSystem`). The shapes and checks follow
//! hcsshim's `internal/hcsoci` (createWindowsContainerDocument, validateContainerConfig) and the
//! runtime-spec's Windows section; `spec/hcs.schema.json` describes every field emitted here.
//!
//! Linux-only sections are refused rather than ignored: a spec carrying `linux.seccomp` was
//! written for a kernel that enforces it.

use oci_spec::runtime::{Spec, Windows};
use serde_json::{json, Map, Value};

use super::{Context, PlatformError, Result};

mod process;
#[cfg(test)]
mod tests;
mod uvm;

/// The `ShouldTerminateOnLastHandleClosed` documents ward hands to HcsCreateComputeSystem, and
/// the parameters of the container's first process (HcsCreateProcess).
#[derive(Debug, Clone)]
pub struct Documents {
    /// Process isolation: the container. Hyper-V: the hosted container.
    pub container: Value,
    /// Hyper-V isolation: the utility VM, to create and start first.
    pub utility_vm: Option<Value>,
    pub process: Value,
}

impl Documents {
    /// `{"Container": ..., "UtilityVM": ..., "Process": ...}`, as `ward translate` prints it.
    pub fn to_json(&self) -> Result<String> {
        let mut out = Map::new();
        out.insert("Container".into(), self.container.clone());
        if let Some(vm) = &self.utility_vm {
            out.insert("UtilityVM".into(), vm.clone());
        }
        out.insert("Process".into(), self.process.clone());
        serde_json::to_string_pretty(&Value::Object(out))
            .map_err(|e| PlatformError::spec("hcs document", e.to_string()))
    }
}

/// HCS schema 2.1, what hcsshim uses for Windows containers.
fn schema_version() -> Value {
    json!({"Major": 2, "Minor": 1})
}

/// hcsshim's `\\?\VMSMB\VSMB-{...}\` prefix: how a VSMB share appears inside the utility VM.
pub(crate) const VSMB_PREFIX: &str = r"\\?\VMSMB\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\";

pub fn translate(spec: &Spec, ctx: &Context) -> Result<Documents> {
    let win = spec.windows().as_ref().ok_or_else(|| {
        PlatformError::spec("windows", "missing: not a Windows spec (use --to seatbelt)")
    })?;
    refuse_unsupported(spec, win)?;
    let hyperv = win.hyperv().is_some();

    let layers = win.layer_folders().clone().unwrap_or_default();
    if layers.len() < 2 {
        return Err(PlatformError::spec(
            "windows.layerFolders",
            "needs at least one read-only layer and the scratch layer (last)",
        ));
    }
    let (read_only, scratch) = layers.split_at(layers.len() - 1);
    let root_path = spec
        .root()
        .as_ref()
        .map(|r| r.path().to_string_lossy().into_owned())
        .unwrap_or_default();
    // runtime-spec: a volume GUID path for process isolation, omitted for Hyper-V.
    match (hyperv, root_path.is_empty()) {
        (false, true) => {
            return Err(PlatformError::spec(
                "root.path",
                "a volume path (\\\\?\\Volume{...}\\) is required",
            ))
        }
        (true, false) => {
            return Err(PlatformError::spec(
                "root.path",
                "must be omitted for a Hyper-V container",
            ))
        }
        _ => {}
    }

    let mut container = Map::new();
    if let Some(h) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        container.insert("GuestOs".into(), json!({"HostName": h}));
    }
    let mut shares = Vec::new(); // Hyper-V: host folders the utility VM sees through VSMB
    let layer_docs: Vec<Value> = read_only
        .iter()
        .enumerate()
        .map(|(i, folder)| {
            let path = if hyperv {
                shares.push(uvm::share(&format!("l{i}"), folder, true));
                format!("{VSMB_PREFIX}l{i}")
            } else {
                folder.clone()
            };
            json!({"Id": layer_id(folder), "Path": path})
        })
        .collect();
    let mut storage = Map::new();
    storage.insert("Layers".into(), Value::Array(layer_docs));
    storage.insert(
        "Path".into(),
        Value::String(if hyperv {
            uvm::scratch_in_guest(&ctx.id)
        } else {
            root_path
        }),
    );
    let res = resources_json(win);
    {
        let mut qos = Map::new();
        if let Some(iops) = res["storage"]["iops"].as_u64().filter(|v| *v > 0) {
            qos.insert(
                "IopsMaximum".into(),
                json!(int32("windows.resources.storage.iops", iops)?),
            );
        }
        if let Some(bps) = res["storage"]["bps"].as_u64().filter(|v| *v > 0) {
            qos.insert(
                "BandwidthMaximum".into(),
                json!(int32("windows.resources.storage.bps", bps)?),
            );
        }
        if !qos.is_empty() {
            storage.insert("QoS".into(), Value::Object(qos));
        }
    }
    container.insert("Storage".into(), Value::Object(storage));

    let (dirs, pipes) = mounts(spec, hyperv, &mut shares)?;
    if !dirs.is_empty() {
        container.insert("MappedDirectories".into(), Value::Array(dirs));
    }
    if !pipes.is_empty() {
        container.insert("MappedPipes".into(), Value::Array(pipes));
    }

    let (memory_mb, processor) = resources(&res)?;
    if !hyperv {
        // Hyper-V: the limits apply to the utility VM (uvm.rs).
        if let Some(mb) = memory_mb {
            container.insert("Memory".into(), json!({"SizeInMB": mb}));
        }
        if !processor.is_empty() {
            container.insert("Processor".into(), Value::Object(processor.clone()));
        }
    }
    if let Some(n) = win.network() {
        let mut net = Map::new();
        let raw = serde_json::to_value(n).unwrap_or_default();
        if raw["allowUnqualifiedDNSQuery"] == json!(true) {
            net.insert("AllowUnqualifiedDnsQuery".into(), json!(true));
        }
        if let Some(list) = n.dns_search_list().as_ref().filter(|l| !l.is_empty()) {
            net.insert("DnsSearchList".into(), json!(list.join(",")));
        }
        if let Some(name) = n
            .network_shared_container_name()
            .as_ref()
            .filter(|s| !s.is_empty())
        {
            net.insert("NetworkSharedContainerName".into(), json!(name));
        }
        if let Some(ns) = n.network_namespace().as_ref().filter(|s| !s.is_empty()) {
            net.insert("Namespace".into(), json!(ns));
        }
        if let Some(eps) = n.endpoint_list().as_ref().filter(|l| !l.is_empty()) {
            net.insert("NetworkAdapters".into(), json!(eps));
        }
        if !net.is_empty() {
            container.insert("Networking".into(), Value::Object(net));
        }
    }
    let devices = assigned_devices(win, hyperv)?;
    if !devices.is_empty() {
        container.insert("AssignedDevices".into(), Value::Array(devices));
    }
    if let Some(cred) = win.credential_spec().as_ref().filter(|c| !c.is_empty()) {
        // The executor registers a Container Credential Guard instance with this spec and
        // completes the state (Cookie, RpcEndpoint) before creating the compute system.
        // Through a Value: its maps are sorted, so the text is stable (the spec's is a HashMap).
        let text = serde_json::to_value(cred)
            .map(|v| v.to_string())
            .map_err(|e| PlatformError::spec("windows.credentialSpec", e.to_string()))?;
        container.insert(
            "ContainerCredentialGuard".into(),
            json!({"Transport": "LRPC", "CredentialSpec": text}),
        );
    }

    let mut doc = json!({
        "Owner": "ward",
        "SchemaVersion": schema_version(),
        "ShouldTerminateOnLastHandleClosed": true,
    });
    let utility_vm = if hyperv {
        let vm_id = format!("{}@vm", ctx.id);
        doc["HostingSystemId"] = json!(vm_id);
        doc["HostedSystem"] = json!({"SchemaVersion": schema_version(), "Container": container});
        Some(uvm::document(
            win,
            scratch[0].as_str(),
            read_only,
            memory_mb,
            processor,
            shares,
        )?)
    } else {
        doc["Container"] = Value::Object(container);
        None
    };
    Ok(Documents {
        container: doc,
        utility_vm,
        process: process::parameters(spec)?,
    })
}

/// What hcsshim refuses, and the Linux sections a Windows container cannot enforce.
fn refuse_unsupported(spec: &Spec, win: &Windows) -> Result<()> {
    let mut fields = Vec::new();
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        fields.push((
            "root.readonly".to_string(),
            "a read-only root is not supported on Windows".to_string(),
        ));
    }
    if spec.linux().is_some() {
        fields.push((
            "linux".into(),
            "Linux settings cannot be enforced by HCS".into(),
        ));
    }
    if win.servicing() == Some(true) {
        fields.push((
            "windows.servicing".into(),
            "servicing containers are not supported".into(),
        ));
    }
    if spec.hooks().is_some() {
        fields.push((
            "hooks".into(),
            "the Windows executor does not run hooks".into(),
        ));
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(PlatformError::Refused {
            target: "hcs (Windows)",
            fields,
            overridable: false,
        })
    }
}

fn int32(field: &str, v: u64) -> Result<i32> {
    i32::try_from(v).map_err(|_| PlatformError::spec(field, format!("{v} exceeds {}", i32::MAX)))
}

/// `windows.resources` as JSON: oci-spec 0.10 generates no getters for its fields.
fn resources_json(win: &Windows) -> Value {
    win.resources()
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or_default()
}

/// (memory in MB, Processor{Count|Maximum|Weight}) from `windows.resources` (as JSON).
fn resources(res: &Value) -> Result<(Option<u64>, Map<String, Value>)> {
    let memory_mb = match res["memory"]["limit"].as_u64() {
        None | Some(0) => None,
        Some(bytes) if bytes < 1024 * 1024 => {
            // hcsshim divides down to MB: 0 would mean "no limit", silently.
            return Err(PlatformError::spec(
                "windows.resources.memory.limit",
                format!("{bytes} bytes is below 1 MiB"),
            ));
        }
        Some(bytes) => Some(bytes / 1024 / 1024),
    };
    let mut processor = Map::new();
    if let Some(cpu) = res.get("cpu") {
        let count = cpu["count"].as_u64().unwrap_or(0);
        let maximum = cpu["maximum"].as_u64().unwrap_or(0);
        let shares = cpu["shares"].as_u64().unwrap_or(0);
        if [count, maximum, shares].iter().filter(|v| **v != 0).count() > 1 {
            return Err(PlatformError::spec(
                "windows.resources.cpu",
                format!("count ({count}), maximum ({maximum}) and shares ({shares}) are mutually exclusive"),
            ));
        }
        if maximum > 10_000 {
            return Err(PlatformError::spec(
                "windows.resources.cpu.maximum",
                "must be 1..10000",
            ));
        }
        if shares > 10_000 {
            return Err(PlatformError::spec(
                "windows.resources.cpu.shares",
                "must be 1..10000",
            ));
        }
        for (key, v) in [("Count", count), ("Maximum", maximum), ("Weight", shares)] {
            if v != 0 {
                processor.insert(key.into(), json!(v));
            }
        }
    }
    Ok((memory_mb, processor))
}

/// `mounts` → MappedDirectories and MappedPipes (hcsshim: a destination under `\\.\pipe\`).
fn mounts(spec: &Spec, hyperv: bool, shares: &mut Vec<Value>) -> Result<(Vec<Value>, Vec<Value>)> {
    let (mut dirs, mut pipes) = (Vec::new(), Vec::new());
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{i}]");
        if !matches!(m.typ().as_deref(), None | Some("") | Some("bind")) {
            return Err(PlatformError::spec(
                format!("{field}.type"),
                "only bind mounts are supported on Windows",
            ));
        }
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = m.destination().to_string_lossy().into_owned();
        if source.is_empty() || dest.is_empty() {
            return Err(PlatformError::spec(
                field,
                "source and destination are required",
            ));
        }
        let ro = m.options().iter().flatten().any(|o| o == "ro");
        if let Some(pipe) = strip_prefix_ci(&dest, r"\\.\pipe\") {
            if hyperv {
                return Err(PlatformError::Refused {
                    target: "hcs (Windows)",
                    fields: vec![(
                        format!("{field}.destination"),
                        "named pipes into a Hyper-V container".into(),
                    )],
                    overridable: false,
                });
            }
            pipes.push(json!({"ContainerPipeName": pipe, "HostPath": source}));
            continue;
        }
        let host = if hyperv {
            shares.push(uvm::share(&format!("m{i}"), &source, ro));
            format!("{VSMB_PREFIX}m{i}")
        } else {
            source
        };
        dirs.push(json!({"HostPath": host, "ContainerPath": dest, "ReadOnly": ro}));
    }
    Ok((dirs, pipes))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `windows.devices`: device interface classes (process isolation), as hcsshim assigns them.
fn assigned_devices(win: &Windows, hyperv: bool) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, d) in win.devices().iter().flatten().enumerate() {
        let class = matches!(d.id_type().as_str(), "class" | "vpci-class-guid");
        if !class || hyperv {
            return Err(PlatformError::Refused {
                target: "hcs (Windows)",
                fields: vec![(
                    format!("windows.devices[{i}]"),
                    format!("idType {:?} is not supported", d.id_type()),
                )],
                overridable: false,
            });
        }
        if !is_guid(d.id()) {
            return Err(PlatformError::spec(
                format!("windows.devices[{i}].id"),
                "not a GUID",
            ));
        }
        out.push(json!({"Type": "ClassGuid", "InterfaceClassGuid": d.id()}));
    }
    Ok(out)
}

fn is_guid(s: &str) -> bool {
    let s = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(s);
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A stable GUID for a layer folder. hcsshim asks vmcompute's NameToGuid for it (a Windows
/// call); this is a deterministic stand-in (FNV-1a 128 of the folder's name, RFC 9562 version 8
/// layout) so translation stays pure. HCS needs it unique per layer; the lead may revisit.
fn layer_id(folder: &str) -> String {
    let name = folder
        .rsplit(['\\', '/'])
        .find(|s| !s.is_empty())
        .unwrap_or(folder);
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in name.to_ascii_lowercase().bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let b = (h & !(0xf << 76) | (0x8 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let x = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}
