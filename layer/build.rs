//! Records the compiler version for the `x-goog-api-client` header (`gl-rust/<version>`),
//! as Google's Rust libraries do.

fn main() {
    let version = rustc_version::version()
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=CROSSFED_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-changed=build.rs");
}
