//! A Lambda function binary running as a child process against a local Runtime API.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::lambda::runtime_api::LambdaRuntimeApi;
use crate::scenario::Scenario;

/// The child process; killed when dropped.
pub struct FunctionProcess {
    child: Child,
}

impl FunctionProcess {
    /// Starts `binary` with a clean environment plus `env` (and `PATH`).
    pub fn spawn(
        binary: &Path,
        env: &[(String, String)],
        inherit_output: bool,
    ) -> std::io::Result<Self> {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        if !inherit_output {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        Ok(FunctionProcess {
            child: cmd.spawn()?,
        })
    }

    /// Starts a prepared command (e.g. a Python runtime with its own working directory).
    pub fn spawn_command(mut command: Command) -> std::io::Result<Self> {
        Ok(FunctionProcess {
            child: command.spawn()?,
        })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size so far in KiB (see [`peak_rss_kib`]).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss_kib(self.id())
    }

    /// Whether the process has exited (e.g. a failed init).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Scenario {
    /// The environment Lambda would give `function`: the role's credentials, the local
    /// Runtime API, the credential configuration in a new SSM SecureString, loopback
    /// endpoints allowed, plus `extra` (which wins over the defaults).
    pub async fn function_env(
        &self,
        runtime: &LambdaRuntimeApi,
        function: &str,
        extra: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let config = self.config_json(&crate::scenario::ConfigShape::default());
        let parameter = self.put_parameter(&config.to_string(), true).await;
        let mut env = self.lambda_env();
        let runtime_api = runtime.address();
        let defaults = [
            ("AWS_LAMBDA_FUNCTION_NAME", function),
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.as_str()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("CROSSFED_CONFIG_PARAMETER", parameter.as_str()),
            ("RUST_LOG", "info"),
        ];
        for (k, v) in defaults.iter().chain(extra.iter()) {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        env
    }
}

/// Peak resident set size so far of process `pid` (`VmHWM` of `/proc/<pid>/status`) in KiB;
/// `None` once the process is gone or where `/proc` has no such field.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
