//! The Rust toolchain the workspace states (`rust-version` in Cargo.toml, the README) is the
//! one the locked dependencies need, and the one building this is at least that.

use std::process::Command;

use crossfed_tests::workspace_root;
use serde_json::Value;

fn version(text: &str) -> Vec<u64> {
    text.split('.').map(|n| n.parse().unwrap_or(0)).collect()
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn rust_version_readme_and_lock_file_agree() {
    let root = workspace_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let declared = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("[workspace.package] rust-version");

    // What the locked dependencies of this platform need.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let info = run(&rustc, &["-vV"]);
    let host = info.lines().find_map(|l| l.strip_prefix("host: ")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata: Value = serde_json::from_str(&run(
        &cargo,
        &[
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--offline",
            "--filter-platform",
            host,
        ],
    ))
    .unwrap();
    let (needed, by) = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["source"].is_null())
        .filter_map(|p| {
            let v = p["rust_version"].as_str()?;
            Some((version(v), format!("{} {}", p["name"], p["version"])))
        })
        .max()
        .expect("locked packages state a rust-version");
    assert_eq!(
        version(declared),
        needed,
        "rust-version {declared}: the lock file needs {needed:?} ({by})"
    );

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("toolchain ({declared}+")),
        "the README states another toolchain than {declared}"
    );
    let release = info
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .unwrap();
    assert!(
        version(release) >= version(declared),
        "rustc {release} is older than rust-version {declared}"
    );
}
