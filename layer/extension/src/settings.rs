//! The extension's settings, read from the function's environment.

use std::net::SocketAddr;

/// Where the metadata server listens (`host:port`, loopback only).
pub const METADATA_ADDR_ENV: &str = "CROSSFED_METADATA_ADDR";
/// Default listen address.
pub const DEFAULT_METADATA_ADDR: &str = "127.0.0.1:8173";
pub use crossfed::google::{CONFIG_PARAMETER_ENV, CREDENTIALS_FILE_ENV};
/// The project reported as `project/project-id`.
pub const PROJECT_ENV: &str = "GOOGLE_CLOUD_PROJECT";
/// How Lambda initialised the sandbox: `on-demand`, `provisioned-concurrency`, `snap-start`
/// or `lambda-managed-instances`.
pub const INITIALIZATION_TYPE_ENV: &str = "AWS_LAMBDA_INITIALIZATION_TYPE";

/// How Lambda runs the sandbox, from [`INITIALIZATION_TYPE_ENV`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Initialization {
    /// Frozen between invocations; INVOKE and SHUTDOWN events (also provisioned concurrency).
    #[default]
    OnDemand,
    /// SnapStart: the init ends in a snapshot from which many sandboxes are restored, so
    /// nothing is minted ahead at init, and whatever a request minted before the snapshot
    /// is dropped after the restore (the library notices the wall clock's jump).
    SnapStart,
    /// Lambda Managed Instances: many invocations at once in a sandbox that is never frozen,
    /// and extensions get no INVOKE events (only SHUTDOWN).
    ManagedInstances,
}

impl Initialization {
    fn from_value(value: Option<&str>) -> Self {
        match value {
            Some("snap-start") => Initialization::SnapStart,
            Some("lambda-managed-instances") => Initialization::ManagedInstances,
            _ => Initialization::OnDemand,
        }
    }

    /// Whether tokens are minted at init, ahead of the first request: not under SnapStart,
    /// where they would end up in the snapshot.
    pub fn warms_up(self) -> bool {
        self != Initialization::SnapStart
    }
}

/// Typed settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Loopback listen address.
    pub addr: SocketAddr,
    /// SSM parameter name or ARN.
    pub config_parameter: String,
    /// `GOOGLE_CLOUD_PROJECT`, if set.
    pub project_id: Option<String>,
    /// Problems worth a warning at init (not fatal).
    pub warnings: Vec<String>,
    /// How Lambda runs the sandbox.
    pub initialization: Initialization,
}

impl Settings {
    /// Reads the settings through `get` (the process environment in `main`), collecting every
    /// problem into one message.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        let addr = parse_addr(
            get(METADATA_ADDR_ENV)
                .as_deref()
                .unwrap_or(DEFAULT_METADATA_ADDR),
        )
        .map_err(|e| problems.push(e))
        .ok();
        let config_parameter = get(CONFIG_PARAMETER_ENV);
        if config_parameter.is_none() {
            problems.push(format!(
                "set {CONFIG_PARAMETER_ENV} to the SSM parameter holding the configuration written by `gcloud iam workload-identity-pools create-cred-config --aws` (the crossfed extension reads its configuration from SSM only)"
            ));
        }
        let mut warnings = Vec::new();
        if get(CREDENTIALS_FILE_ENV).is_some() {
            warnings.push(format!(
                "{CREDENTIALS_FILE_ENV} is set: Google's client libraries will read that file and federate in-process instead of asking this extension; remove it from the function's environment"
            ));
        }
        match (addr, config_parameter) {
            (Some(addr), Some(config_parameter)) if problems.is_empty() => Ok(Settings {
                addr,
                config_parameter,
                project_id: get(PROJECT_ENV),
                warnings,
                initialization: Initialization::from_value(get(INITIALIZATION_TYPE_ENV).as_deref()),
            }),
            _ => Err(problems.join("; ")),
        }
    }
}

/// Parses `host:port`, refusing anything but a loopback IP.
fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    let addr = if let Some(port) = value.strip_prefix("localhost:") {
        format!("127.0.0.1:{port}")
    } else {
        value.to_string()
    };
    let addr: SocketAddr = addr.parse().map_err(|_| {
        format!("{METADATA_ADDR_ENV} `{value}` is not an IP address and port such as {DEFAULT_METADATA_ADDR}")
    })?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{METADATA_ADDR_ENV} `{value}` is not a loopback address: the metadata server hands out tokens and listens on 127.0.0.1 or ::1 only"
        ));
    }
    if addr.port() == 0 {
        return Err(format!(
            "{METADATA_ADDR_ENV} `{value}` needs a fixed port: the function's GCE_METADATA_HOST must name it"
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::from_env(env(&[(CONFIG_PARAMETER_ENV, "/p")])).unwrap();
        assert_eq!(s.addr, "127.0.0.1:8173".parse().unwrap());
        assert_eq!(s.config_parameter, "/p");
        assert!(s.warnings.is_empty());
        let s = Settings::from_env(env(&[
            (CONFIG_PARAMETER_ENV, "/p"),
            (METADATA_ADDR_ENV, "[::1]:9000"),
            (PROJECT_ENV, "my-project"),
            (CREDENTIALS_FILE_ENV, "/tmp/x.json"),
        ]))
        .unwrap();
        assert_eq!(s.addr, "[::1]:9000".parse().unwrap());
        assert_eq!(s.project_id.as_deref(), Some("my-project"));
        assert!(
            s.warnings[0].contains(CREDENTIALS_FILE_ENV),
            "{:?}",
            s.warnings
        );
        let s = Settings::from_env(env(&[
            (CONFIG_PARAMETER_ENV, "/p"),
            (METADATA_ADDR_ENV, "localhost:81"),
        ]))
        .unwrap();
        assert_eq!(s.addr, "127.0.0.1:81".parse().unwrap());
    }

    #[test]
    fn initialization_types() {
        for (value, expected, warms_up) in [
            (None, Initialization::OnDemand, true),
            (Some("on-demand"), Initialization::OnDemand, true),
            (
                Some("provisioned-concurrency"),
                Initialization::OnDemand,
                true,
            ),
            (Some("snap-start"), Initialization::SnapStart, false),
            (
                Some("lambda-managed-instances"),
                Initialization::ManagedInstances,
                true,
            ),
        ] {
            let mut vars = vec![(CONFIG_PARAMETER_ENV, "/p")];
            vars.extend(value.map(|v| (INITIALIZATION_TYPE_ENV, v)));
            let s = Settings::from_env(env(&vars)).unwrap();
            assert_eq!(s.initialization, expected, "{value:?}");
            assert_eq!(s.initialization.warms_up(), warms_up, "{value:?}");
        }
    }

    #[test]
    fn refuses_non_loopback_and_reports_every_problem() {
        for (addr, why) in [
            ("0.0.0.0:8173", "not a loopback"),
            ("169.254.169.254:80", "not a loopback"),
            ("10.0.0.1:80", "not a loopback"),
            ("metadata.google.internal:80", "not an IP address"),
            ("127.0.0.1", "not an IP address"),
            ("127.0.0.1:0", "fixed port"),
        ] {
            let err = Settings::from_env(env(&[(METADATA_ADDR_ENV, addr)])).unwrap_err();
            assert!(err.contains(why), "{addr}: {err}");
            assert!(err.contains(CONFIG_PARAMETER_ENV), "{addr}: {err}");
        }
    }
}
