//! The sample events in `events/` (what `sam local invoke`, `sam remote invoke` and
//! `cargo lambda invoke --data-file` users feed the functions), by function.

use std::path::PathBuf;

use serde_json::Value;

/// The functions; every sample file is named `<function>.json` or `<function>-*.json`.
pub const FUNCTIONS: [&str; 3] = ["list-buckets", "gcs-sync", "cross-cloud-report"];

/// The `events/` directory of the repository.
pub fn dir() -> PathBuf {
    crate::workspace::workspace_root().join("events")
}

/// Every file name in `events/`, sorted.
pub fn all_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("events/ directory")
        .map(|e| {
            e.expect("events/ entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The function a sample file belongs to, by its name.
pub fn function_of(file: &str) -> Option<&'static str> {
    let stem = file.strip_suffix(".json")?;
    FUNCTIONS.into_iter().find(|f| {
        stem == *f
            || stem
                .strip_prefix(f)
                .is_some_and(|rest| rest.starts_with('-'))
    })
}

/// The raw text of a sample file.
pub fn text(file: &str) -> String {
    let path = dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The event in a sample file.
///
/// # Panics
/// If the file is missing or not JSON.
pub fn event(file: &str) -> Value {
    serde_json::from_str(&text(file)).unwrap_or_else(|e| panic!("events/{file} is not JSON: {e}"))
}

/// `(file name, event)` for every sample of `function`.
pub fn for_function(function: &str) -> Vec<(String, Value)> {
    all_files()
        .into_iter()
        .filter(|f| function_of(f) == Some(function))
        .map(|f| {
            let event = event(&f);
            (f, event)
        })
        .collect()
}
