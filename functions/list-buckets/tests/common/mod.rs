//! Shared harness for the list-buckets tests: moto (role credentials, the SSM parameter),
//! the strict Google fakes and the gRPC storage fake, which serves `crossfed-bucket-a` and
//! `crossfed-bucket-b` for `my-project`.

#![allow(dead_code)]

use std::path::Path;

use crossfed_kit::Env;
use crossfed_tests::scenario::{ConfigShape, Scenario};
use crossfed_tests::{FakeGoogleConfig, FunctionProcess, LambdaRuntimeApi};
use list_buckets::handler::App;
use list_buckets::settings::Settings;

/// One test's clouds and a local Lambda Runtime API.
pub struct Harness {
    pub scenario: Scenario,
    pub runtime: LambdaRuntimeApi,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`Harness::start`], after `edit` adjusts the fake Google configuration.
    pub async fn start_with(edit: impl FnOnce(&mut FakeGoogleConfig)) -> Self {
        Harness {
            scenario: Scenario::start_with(edit).await,
            runtime: LambdaRuntimeApi::start().await,
        }
    }

    /// The function's variables for the local clouds, plus `extra` (wins).
    pub fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("GOOGLE_CLOUD_PROJECT".to_string(), "my-project".to_string()),
            (
                "STORAGE_EMULATOR_HOST_GRPC".to_string(),
                self.scenario.storage.endpoint(),
            ),
            (
                "CROSSFED_ALLOW_LOCAL_ENDPOINTS".to_string(),
                "1".to_string(),
            ),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        env
    }

    /// The function's clients in-process, as the `crossfed-lambda` role.
    pub async fn app(&self, extra: &[(&str, &str)]) -> App {
        let settings = Settings::from_env(&Env::from_pairs(self.env(extra))).expect("settings");
        let config = self.scenario.config_json(&ConfigShape::default());
        let credentials = self.scenario.builder(&config).build().expect("credentials");
        App::new(settings, credentials).await.expect("app")
    }

    /// The environment Lambda would give the function under `runtime`: [`Harness::env`]
    /// with `extra`, the role's credentials, the credential configuration in a new SSM
    /// SecureString.
    pub async fn lambda_env(
        &self,
        runtime: &LambdaRuntimeApi,
        extra: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let vars = self.env(extra);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.scenario
            .function_env(runtime, "list-buckets", &vars)
            .await
    }

    /// The real binary under [`Harness::runtime`] with [`Harness::lambda_env`].
    pub async fn spawn(&self, extra: &[(&str, &str)]) -> FunctionProcess {
        let env = self.lambda_env(&self.runtime, extra).await;
        FunctionProcess::spawn(Path::new(env!("CARGO_BIN_EXE_list-buckets")), &env, false)
            .expect("spawn list-buckets")
    }
}
