//! Paths in this checkout: the workspace root and the pinned Python venvs `make` creates.

use std::path::PathBuf;

/// The workspace root (where `Cargo.toml`, `events/` and the venvs are).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crossfed-tests sits one level below the workspace root")
        .to_path_buf()
}

/// `<root>/<venv>/bin/python`, e.g. `venv_python(".venv-ext", "ext-clients")`.
///
/// # Panics
/// If the venv is missing, naming the `make` target that creates it.
pub fn venv_python(venv: &str, make_target: &str) -> PathBuf {
    let python = workspace_root().join(venv).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make {make_target}`",
        python.display()
    );
    python
}
