//! Every `events/list-buckets*.json` sample fed to the real binary.

mod common;

use common::Harness;
use crossfed_tests::lambda::sample_events;

#[tokio::test]
async fn every_sample_event_lists_the_buckets() {
    let h = Harness::start().await;
    let _function = h.spawn(&[]).await;
    let samples = sample_events::for_function("list-buckets");
    assert!(!samples.is_empty());
    for (file, event) in samples {
        let out = h.runtime.invoke(event).await.expect(&file);
        assert_eq!(out["statusCode"], 200, "{file}: {out}");
        assert!(
            out["body"].as_str().unwrap().contains("crossfed-bucket-a"),
            "{file}: {out}"
        );
    }
}
