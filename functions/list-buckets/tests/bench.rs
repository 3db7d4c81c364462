//! Benchmarks (`make bench`): the real `list-buckets` cold start (process start to the first
//! `/runtime/invocation/next`) under a local Runtime API, next to the sum of the round trips
//! init cannot avoid (SSM GetParameter for the credential configuration, then the STS
//! exchange and impersonation for the token warm-up), each timed on its own. Client and
//! channel construction run concurrently with them, so the difference is process start-up
//! plus what is not overlapped.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Harness;
use crossfed_tests::scenario::ConfigShape;
use crossfed_tests::{FunctionProcess, GoogleApi, LambdaRuntimeApi, median};

const RUNS: usize = 15;

#[tokio::test]
#[ignore = "benchmark: run by `make bench`"]
async fn bench_cold_start_against_round_trips() {
    let h = Harness::start().await;
    let s = &h.scenario;
    let config = s.config_json(&ConfigShape::default()).to_string();
    let parameter = s.put_parameter(&config, true).await;
    let ssm = s.role_ssm().await;

    let (mut cold, mut ssm_rt, mut token_rt) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let started = Instant::now();
        ssm.get_parameter()
            .name(&parameter)
            .with_decryption(true)
            .send()
            .await
            .expect("GetParameter");
        ssm_rt.push(started.elapsed());

        let credentials = s
            .builder(&s.config_json(&ConfigShape::default()))
            .build()
            .unwrap();
        let started = Instant::now();
        credentials.token().await.expect("token");
        token_rt.push(started.elapsed());

        let runtime = LambdaRuntimeApi::start().await;
        let env = h.lambda_env(&runtime, &[]).await;
        let calls = s.google.calls(GoogleApi::Sts);
        let started = Instant::now();
        let mut function =
            FunctionProcess::spawn(Path::new(env!("CARGO_BIN_EXE_list-buckets")), &env, false)
                .unwrap();
        while runtime.next_calls() == 0 {
            assert!(!function.exited(), "init failed");
            assert!(started.elapsed() < Duration::from_secs(20), "no /next");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        cold.push(started.elapsed());
        assert_eq!(
            s.google.calls(GoogleApi::Sts),
            calls + 1,
            "the token was warmed at init"
        );
    }
    let (cold, ssm_rt, token_rt) = (median(cold), median(ssm_rt), median(token_rt));
    println!(
        "BENCH list-buckets cold start p50 {:.1} ms; round trips p50: SSM {:.1} ms + STS+IAM token {:.1} ms = {:.1} ms ({RUNS} runs)",
        cold.as_secs_f64() * 1e3,
        ssm_rt.as_secs_f64() * 1e3,
        token_rt.as_secs_f64() * 1e3,
        (ssm_rt + token_rt).as_secs_f64() * 1e3,
    );
}
