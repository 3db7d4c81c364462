//! The handler in process against moto, fake-gcs-server (through the backed gRPC fake) and
//! the fake Vertex AI: report contents against the known inventory, degraded summaries, and
//! the date-partitioned outputs.

mod common;

use std::collections::BTreeMap;

use common::{Harness, SUMMARY};
use cross_cloud_report::drift::Reason;
use cross_cloud_report::handler::handle;
use cross_cloud_report::report::Report;
use cross_cloud_report::stats::ClassStats;
use crossfed_tests::Fault;
use crossfed_tests::GoogleApi;
use serde_json::json;
use time::OffsetDateTime;

/// 2026-11-28T06:00:01Z.
fn six_am() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_845_601).unwrap()
}

fn classes(entries: &[(&str, u64, u64)]) -> BTreeMap<String, ClassStats> {
    entries
        .iter()
        .map(|(c, objects, bytes)| {
            (
                c.to_string(),
                ClassStats {
                    objects: *objects,
                    bytes: *bytes,
                },
            )
        })
        .collect()
}

#[tokio::test]
async fn report_matches_the_known_inventory() {
    let f = Harness::start().await;
    let app = f.app(&[]).await;
    let response = handle(&app, json!({"date": "2026-11-27"}), six_am())
        .await
        .expect("report");

    let out = f.bucket("out");
    let gout = f.bucket("gout");
    assert_eq!(
        response.outputs,
        vec![
            format!("s3://{out}/reports/dt=2026-11-27/report-060001.json"),
            format!("s3://{out}/reports/dt=2026-11-27/report-060001.md"),
            format!("gs://{gout}/reports/daily/dt=2026-11-27/report-060001.json"),
            format!("gs://{gout}/reports/daily/dt=2026-11-27/report-060001.md"),
        ]
    );
    assert_eq!(
        (
            response.gcs_buckets,
            response.s3_buckets,
            response.sync_pairs
        ),
        (2, 1, 1)
    );
    assert_eq!((response.gcs_objects, response.s3_objects), (5, 4));
    assert_eq!(
        (
            response.drift_missing,
            response.drift_extra,
            response.drift_different
        ),
        (1, 1, 2)
    );
    assert_eq!(response.errors, 0);
    assert!(response.summary);

    // The JSON in S3 is the full report.
    let json = f
        .read_s3(&out, "reports/dt=2026-11-27/report-060001.json")
        .await;
    let report: Report = serde_json::from_str(&json).expect("report JSON parses");
    assert_eq!(report.report_date, "2026-11-27");
    assert_eq!(report.generated_at, "2026-11-28T06:00:01Z");
    assert_eq!(report.summary.as_deref(), Some(SUMMARY));
    assert_eq!(report.summary_error, None);

    let [gcs, gcs_dir] = &report.gcs[..] else {
        panic!("{:?}", report.gcs)
    };
    assert_eq!(gcs.location, format!("gs://{}/", f.bucket("gcs")));
    assert_eq!((gcs.object_count, gcs.total_bytes), (3, 3510));
    assert_eq!(
        gcs.by_storage_class,
        classes(&[("NEARLINE", 1, 3000), ("STANDARD", 2, 510)])
    );
    let largest: Vec<_> = gcs
        .largest
        .iter()
        .map(|l| (l.key.as_str(), l.size, l.storage_class.as_str()))
        .collect();
    assert_eq!(
        largest,
        vec![("dir/b", 3000, "NEARLINE"), ("dir/c", 500, "STANDARD")]
    );
    assert_eq!(gcs_dir.location, format!("gs://{}/dir/", f.bucket("gcs")));
    assert_eq!((gcs_dir.object_count, gcs_dir.total_bytes), (2, 3500));
    assert_eq!(gcs_dir.largest[0].key, "b", "keys relative to the prefix");

    let s3 = &report.s3[0];
    assert_eq!(s3.location, format!("s3://{}/", f.bucket("s3")));
    assert_eq!((s3.object_count, s3.total_bytes), (4, 7150));
    assert_eq!(
        s3.by_storage_class,
        classes(&[("STANDARD", 3, 2150), ("STANDARD_IA", 1, 5000)])
    );
    let largest: Vec<_> = s3
        .largest
        .iter()
        .map(|l| (l.key.as_str(), l.size))
        .collect();
    assert_eq!(largest, vec![("big.bin", 5000), ("logs/b.log", 2000)]);

    let d = &report.drift[0];
    assert_eq!(d.source, format!("s3://{}/data/", f.bucket("src")));
    assert_eq!(d.destination, format!("gs://{}/mirror/", f.bucket("dst")));
    assert_eq!((d.source_objects, d.destination_objects), (5, 5));
    assert_eq!(d.in_sync, 2, "a.txt and sub/e.txt");
    assert_eq!(
        d.checksum_compared, 4,
        "S3 ETags and GCS md5Hash on every match"
    );
    assert_eq!(d.missing.sample, vec!["d.txt"]);
    assert_eq!((d.missing.count, d.missing.bytes), (1, 5));
    assert_eq!(d.extra.sample, vec!["z-extra.txt"]);
    assert_eq!((d.extra.count, d.extra.bytes), (1, 4));
    let different: Vec<_> = d
        .different
        .sample
        .iter()
        .map(|x| (x.key.as_str(), x.reason, x.source_size, x.destination_size))
        .collect();
    assert_eq!(
        different,
        vec![
            ("b.txt", Reason::Checksum, 7, 7),
            ("c.txt", Reason::Size, 7, 9)
        ]
    );
    assert_eq!(
        d.different.sample[0].source_md5.as_deref(),
        Some("64b639cae4492be7a11f8d3368a626d5"),
        "md5(\"bravo-1\")"
    );
    assert_eq!(d.error, None);

    // Markdown next to it, and both documents in GCS too.
    let md = f
        .read_s3(&out, "reports/dt=2026-11-27/report-060001.md")
        .await;
    assert!(
        md.starts_with("# Cross-cloud storage report — 2026-11-27"),
        "{md}"
    );
    assert!(md.contains(SUMMARY), "{md}");
    assert!(md.contains("— DRIFT"), "{md}");
    let gcs_json = f
        .read_gcs(&gout, "reports/daily/dt=2026-11-27/report-060001.json")
        .await
        .expect("report JSON in GCS");
    assert_eq!(serde_json::from_str::<Report>(&gcs_json).unwrap(), report);
    assert_eq!(
        f.read_gcs(&gout, "reports/daily/dt=2026-11-27/report-060001.md")
            .await
            .as_deref(),
        Some(md.as_str())
    );

    // Gemini saw the report, called with the federated token.
    assert_eq!(f.vertex.calls(), 1);
    let request = f.vertex.last_request().unwrap();
    assert_eq!(request.status, 200);
    assert!(request.caller.is_some());
    let prompt = f.vertex.last_prompt().unwrap();
    assert!(
        prompt.contains("\"report_date\":\"2026-11-27\"") && prompt.contains("z-extra.txt"),
        "{prompt}"
    );
    assert!(
        !prompt.contains("\"summary\":\"-"),
        "no summary in its own prompt"
    );
    assert_eq!(
        (
            f.scenario.google.calls(GoogleApi::Sts),
            f.scenario.google.calls(GoogleApi::GenerateAccessToken)
        ),
        (1, 1),
        "one federation for listings, upload and Vertex"
    );
}

#[tokio::test]
async fn vertex_failure_degrades_to_a_report_without_summary() {
    let f = Harness::start().await;
    let app = f.app(&[]).await;
    f.vertex
        .inject_faults([Fault::Status(503), Fault::Status(503)]);
    let response = handle(&app, json!({}), six_am())
        .await
        .expect("still a report");
    assert!(!response.summary);
    assert_eq!(f.vertex.calls(), 2, "retried once");
    assert_eq!(response.report_date, "2026-11-28");

    let json = f
        .read_s3(&f.bucket("out"), "reports/dt=2026-11-28/report-060001.json")
        .await;
    let raw: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(raw["summary"].is_null(), "{raw}");
    let error = raw["summary_error"].as_str().unwrap();
    assert!(error.contains("HTTP 503"), "{error}");
    assert_eq!(
        raw["totals"]["s3_objects"], 4,
        "the rest of the report is intact"
    );
    let md = f
        .read_s3(&f.bucket("out"), "reports/dt=2026-11-28/report-060001.md")
        .await;
    assert!(
        md.contains("_Summary unavailable: Vertex AI returned HTTP 503"),
        "{md}"
    );
}

#[tokio::test]
async fn summary_off_sends_nothing_to_vertex() {
    let f = Harness::start().await;
    let app = f.app(&[("REPORT_SUMMARY", "off")]).await;
    let response = handle(&app, json!({}), six_am()).await.expect("report");
    assert!(!response.summary);
    assert_eq!(f.vertex.calls(), 0, "no Vertex AI call");
    let json = f
        .read_s3(&f.bucket("out"), "reports/dt=2026-11-28/report-060001.json")
        .await;
    let raw: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        raw["summary"].is_null() && raw["summary_error"].is_null(),
        "{raw}"
    );
    assert_eq!(raw["totals"]["s3_objects"], 4);
}

#[tokio::test]
async fn one_retry_recovers_from_429_and_slow_vertex_times_out() {
    let f = Harness::start().await;
    let app = f.app(&[]).await;
    f.vertex.inject_faults([Fault::Status(429)]);
    let response = handle(&app, json!({}), six_am()).await.unwrap();
    assert!(response.summary);
    assert_eq!(f.vertex.calls(), 2);

    let app = f.app(&[("VERTEX_TIMEOUT_SECS", "1")]).await;
    // a timeout is retried once, like a 5xx (the library's retry policy)
    f.vertex.inject_faults([
        Fault::Delay(std::time::Duration::from_secs(3)),
        Fault::Delay(std::time::Duration::from_secs(3)),
    ]);
    let response = handle(&app, json!({}), six_am()).await.unwrap();
    assert!(!response.summary);
    let json = f
        .read_s3(&f.bucket("out"), "reports/dt=2026-11-28/report-060001.json")
        .await;
    let report: Report = serde_json::from_str(&json).unwrap();
    let error = report.summary_error.unwrap();
    assert!(
        error.starts_with("Vertex AI request failed:") && error.contains("timed out"),
        "{error}"
    );
    assert_eq!(
        f.vertex.calls(),
        4,
        "429 retried once, then the slow call retried once"
    );
}

#[tokio::test]
async fn a_missing_bucket_is_reported_and_bad_outputs_fail_the_run() {
    let f = Harness::start().await;
    let missing = f.bucket("nope");
    let output = format!("s3://{}", f.bucket("out"));
    let app = f
        .app(&[("REPORT_GCS_BUCKETS", &missing), ("REPORT_OUTPUT", &output)])
        .await;
    let response = handle(&app, json!({}), six_am()).await.unwrap();
    assert_eq!(response.errors, 1);
    let json = f
        .read_s3(&f.bucket("out"), "dt=2026-11-28/report-060001.json")
        .await;
    let report: Report = serde_json::from_str(&json).unwrap();
    let error = report.gcs[0].error.as_deref().unwrap();
    assert!(error.contains("GCS ListObjects failed"), "{error}");
    assert_eq!(report.s3[0].object_count, 4);

    let outputs = format!("s3://{},s3://{}/x", f.bucket("absent"), f.bucket("out"));
    let app = f.app(&[("REPORT_OUTPUT", &outputs)]).await;
    let error = handle(&app, json!({}), six_am())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!(
            "s3://{}/dt=2026-11-28/report-060001.json",
            f.bucket("absent")
        )) && error.contains("NoSuchBucket")
            && error.contains(&format!(
                "written: s3://{}/x/dt=2026-11-28/report-060001.json",
                f.bucket("out")
            )),
        "{error}"
    );
    let keys = f.s3_keys(&f.bucket("out"), "x/").await;
    assert_eq!(
        keys.len(),
        2,
        "the other output was still written: {keys:?}"
    );
}

#[tokio::test]
async fn listings_page_through_both_clouds_and_the_merge_join_spans_pages() {
    use cross_cloud_report::listing::Listing;
    use cross_cloud_report::s3_inventory::S3Listing;
    use cross_cloud_report::settings::Location;
    use cross_cloud_report::{drift, gcs_inventory, stats};

    let f = Harness::start().await;
    let app = f.app(&[]).await;
    let at = |bucket: String, prefix: &str| Location {
        bucket,
        prefix: prefix.to_string(),
    };

    let mut s3 = S3Listing::new(&app.s3, &at(f.bucket("s3"), ""), 1);
    let mut keys = Vec::new();
    while let Some(o) = s3.next().await.unwrap() {
        keys.push(o.key);
    }
    assert_eq!(
        keys,
        vec!["big.bin", "img/c.png", "logs/a.log", "logs/b.log"]
    );

    let before = f.storage.calls();
    let gcs = stats::collect(
        "gs".into(),
        gcs_inventory::list(&app.control, &at(f.bucket("gcs"), ""), 1),
        2,
    )
    .await;
    assert_eq!(
        (gcs.object_count, gcs.total_bytes, gcs.error),
        (3, 3510, None)
    );
    assert!(
        f.storage.calls() - before >= 3,
        "one ListObjects per object"
    );

    let d = drift::compare(
        "s".into(),
        "d".into(),
        S3Listing::new(&app.s3, &at(f.bucket("src"), "data/"), 2),
        gcs_inventory::list(&app.control, &at(f.bucket("dst"), "mirror/"), 2),
        10,
    )
    .await;
    assert_eq!(d.error, None);
    assert_eq!(
        (d.in_sync, d.missing.count, d.extra.count, d.different.count),
        (2, 1, 1, 2)
    );
}
