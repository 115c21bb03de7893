//! Golden HCS documents (spec/golden/hcs), each validated against spec/hcs.schema.json, and
//! hcsshim's validation. Regenerate the goldens with `WARD_BLESS=1 cargo test platform::hcs`.

use std::path::PathBuf;

use crate::spec::schema_check::validate;
use serde_json::{json, Value};

use super::translate;
use crate::platform::{Context, PlatformError};

fn ctx() -> Context {
    Context {
        id: "golden".into(),
        bundle: PathBuf::from(r"C:\bundles\golden"),
        state_dir: PathBuf::from(r"C:\ProgramData\ward\golden"),
        loopback_ports: Vec::new(),
    }
}

const CASES: &[(&str, &str, &str)] = &[
    (
        "process-isolated",
        include_str!("../../../spec/golden/hcs/process-isolated.json"),
        include_str!("../../../spec/golden/hcs/process-isolated.out.json"),
    ),
    (
        "hyperv",
        include_str!("../../../spec/golden/hcs/hyperv.json"),
        include_str!("../../../spec/golden/hcs/hyperv.out.json"),
    ),
];

fn schema() -> Value {
    serde_json::from_str(include_str!("../../../spec/hcs.schema.json")).expect("schema parses")
}

fn run(config: &Value) -> Result<String, PlatformError> {
    let spec = crate::platform::parse_spec(&config.to_string(), crate::platform::Target::Hcs)?;
    translate(&spec, &ctx())?.to_json()
}

#[test]
fn golden_documents_validate() {
    let bless = std::env::var_os("WARD_BLESS").is_some();
    for (name, config, expected) in CASES {
        let got = run(&serde_json::from_str(config).expect("json"))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            + "\n";
        if bless {
            let path = format!(
                "{}/spec/golden/hcs/{name}.out.json",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::write(path, &got).expect("write golden");
        } else {
            assert_eq!(
                &got, expected,
                "{name}: differs from spec/golden/hcs/{name}.out.json"
            );
        }
        let doc: Value = serde_json::from_str(&got).expect("output is JSON");
        let schema = schema();
        let errors = validate(&schema, &schema, &doc, "$");
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn validator_rejects_what_the_schema_forbids() {
    let schema = schema();
    let bad = json!({"Container": {"Owner": "ward", "SchemaVersion": {"Major": 2, "Minor": 0},
        "ShouldTerminateOnLastHandleClosed": true, "Container": {"Storage": {"Layers": [], "Path": "x"}, "Typo": 1}},
        "Process": {"CommandLine": "x"}});
    let errors = validate(&schema, &schema, &bad, "$");
    assert!(errors.iter().any(|e| e.contains("not in")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("unexpected Typo")),
        "{errors:?}"
    );
}

fn process_config() -> Value {
    serde_json::from_str(include_str!(
        "../../../spec/golden/hcs/process-isolated.json"
    ))
    .expect("json")
}

fn spec_error(config: &Value) -> String {
    match run(config) {
        Err(e @ PlatformError::Spec { .. }) | Err(e @ PlatformError::Refused { .. }) => {
            e.to_string()
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn cpu_settings_are_mutually_exclusive() {
    let mut c = process_config();
    c["windows"]["resources"]["cpu"] = json!({"count": 2, "shares": 500});
    assert!(spec_error(&c).contains("mutually exclusive"));
    c["windows"]["resources"]["cpu"] = json!({"maximum": 20000});
    assert!(spec_error(&c).contains("1..10000"));
}

#[test]
fn hcsshim_refusals() {
    let mut c = process_config();
    c["root"]["readonly"] = json!(true);
    c["linux"] = json!({"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}});
    let err = run(&c).expect_err("refused");
    assert_eq!(err.refused_fields(), ["root.readonly", "linux"]);
    assert!(
        !err.to_string().contains("allow-unenforced"),
        "HCS refusals cannot be overridden"
    );

    let mut c = process_config();
    c["windows"]["layerFolders"] = json!([r"C:\scratch"]);
    assert!(spec_error(&c).contains("layerFolders"));
    let mut c = process_config();
    c["windows"]["resources"]["memory"]["limit"] = json!(4096);
    assert!(spec_error(&c).contains("below 1 MiB"));
    let mut c = process_config();
    c["root"] = json!({"path": ""});
    assert!(spec_error(&c).contains("volume path"));
    let mut c: Value =
        serde_json::from_str(include_str!("../../../spec/golden/hcs/hyperv.json")).expect("json");
    c["root"] = json!({"path": r"\\?\Volume{x}\"});
    assert!(spec_error(&c).contains("omitted for a Hyper-V"));
    let mut c = process_config();
    c["windows"]["devices"] = json!([{"id": "PCIP\\VEN_1234", "idType": "vpci-instance-id"}]);
    assert!(spec_error(&c).contains("vpci-instance-id"));
}

#[test]
fn linux_specs_are_not_windows_specs() {
    let c: Value =
        serde_json::from_str(include_str!("../../../spec/templates/config.json")).expect("json");
    assert!(spec_error(&c).contains("not a Windows spec"));
}

#[test]
fn command_lines_are_escaped_like_windows_expects() {
    assert_eq!(super::process::escape_arg("plain"), "plain");
    assert_eq!(super::process::escape_arg(""), "\"\"");
    assert_eq!(super::process::escape_arg("a b"), "\"a b\"");
    assert_eq!(super::process::escape_arg(r#"a"b"#), r#""a\"b""#);
    assert_eq!(
        super::process::escape_arg(r"C:\dir with space\"),
        r#""C:\dir with space\\""#
    );
    assert!(super::is_guid("5B45201D-F2F2-4F3B-85BB-30FF1F953599"));
    assert!(!super::is_guid("5B45201D"));
    assert_eq!(
        super::layer_id(r"C:\l\abc"),
        super::layer_id(r"D:\other\ABC\")
    );
    assert_ne!(super::layer_id(r"C:\l\abc"), super::layer_id(r"C:\l\abd"));
}

/// `process.user` is POSIX-only in the runtime-spec: a Windows config may leave it out (the
/// process then runs as the image's default user, no `User` in the document).
#[test]
fn windows_config_without_user_translates() {
    let mut config: Value = serde_json::from_str(CASES[0].1).expect("json");
    config["process"]
        .as_object_mut()
        .expect("process")
        .remove("user");
    let doc = run(&config).unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_str(&doc).expect("json");
    assert!(
        !doc.to_string().contains("ContainerUser"),
        "a user appeared from nowhere: {doc}"
    );
}
