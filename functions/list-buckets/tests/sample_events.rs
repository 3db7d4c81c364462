//! Every `events/list-buckets*.json` sample fed to the real binary.

use std::path::Path;

use crossfed_tests::scenario::Scenario;
use crossfed_tests::{FunctionProcess, LambdaRuntimeApi, sample_events};

#[tokio::test]
async fn every_sample_event_lists_the_buckets() {
    let s = Scenario::start().await;
    let runtime = LambdaRuntimeApi::start().await;
    let env = s.list_buckets_env(&runtime).await;
    let _function =
        FunctionProcess::spawn(Path::new(env!("CARGO_BIN_EXE_list-buckets")), &env, false).unwrap();
    let samples = sample_events::for_function("list-buckets");
    assert!(!samples.is_empty());
    for (file, event) in samples {
        let out = runtime.invoke(event).await.expect(&file);
        assert_eq!(out["statusCode"], 200, "{file}: {out}");
        assert!(
            out["body"].as_str().unwrap().contains("crossfed-bucket-a"),
            "{file}: {out}"
        );
    }
}
