//! The handler: a plain async fn — collect, summarise, render, write — over clients built once
//! at init ([`App`]), testable without Lambda.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use crossfed_kit::Env;
use crossfed_kit::metrics::{Metrics, Unit};
use google_cloud_auth::credentials::AccessTokenCredentials;
use google_cloud_storage::client::{Storage, StorageControl};
use serde::Serialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

use crate::drift::{self, Drift};
use crate::listing::BoxError;
use crate::output::{self, Documents};
use crate::report::Report;
use crate::s3_inventory::S3Listing;
use crate::settings::{CloudLocation, Location, Settings};
use crate::stats::{self, BucketStats};
use crate::vertex::VertexClient;
use crate::{gcs_inventory, render};

/// Objects per listing call (the maximum of both APIs).
pub const PAGE_SIZE: i32 = 1000;

/// What every invocation reuses.
pub struct App {
    pub settings: Settings,
    /// Listings (gRPC).
    pub control: StorageControl,
    /// Report upload to GCS (HTTP); only when an output is `gs://`.
    pub storage: Option<Storage>,
    pub s3: aws_sdk_s3::Client,
    pub vertex: VertexClient,
}

impl App {
    /// The cold start: reads the configuration (a bad value fails init with what to fix), the
    /// credential configuration (`CROSSFED_CONFIG_PARAMETER` / `GOOGLE_APPLICATION_CREDENTIALS`)
    /// and the AWS SDK configuration (`AWS_ENDPOINT_URL*` honoured), then builds the clients
    /// while the token cache warms up.
    pub async fn from_env(env: Env) -> Result<Self, BoxError> {
        let settings = Settings::from_env(&env)?;
        let credentials = crossfed::google::Credentials::from_env()?;
        crossfed_kit::warm_up::alongside(&credentials, async {
            let s3 = crossfed_kit::aws::s3_from_env(&env, None).await;
            Self::new(settings, credentials.clone(), s3).await
        })
        .await
    }

    /// The clients for `settings`, with Google `credentials` and an S3 client.
    pub async fn new(
        settings: Settings,
        credentials: crossfed::google::Credentials,
        s3: aws_sdk_s3::Client,
    ) -> Result<Self, BoxError> {
        let mut control = StorageControl::builder().with_credentials(credentials.clone());
        if let Some(endpoint) = &settings.storage_grpc_endpoint {
            control = control.with_endpoint(endpoint);
        }
        let storage = async {
            if !settings.writes_to_gcs() {
                return Ok(None);
            }
            let mut storage = Storage::builder().with_credentials(credentials.clone());
            if let Some(endpoint) = &settings.storage_http_endpoint {
                storage = storage.with_endpoint(endpoint);
            }
            storage.build().await.map(Some)
        };
        let (control, storage) = tokio::join!(control.build(), storage);
        let vertex =
            VertexClient::new(&settings.vertex, AccessTokenCredentials::from(credentials))?;
        Ok(App {
            settings,
            control: control?,
            storage: storage?,
            s3,
            vertex,
        })
    }
}

/// What the invocation returns: where the report went and its headline numbers.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Response {
    pub report_date: String,
    pub outputs: Vec<String>,
    pub gcs_buckets: usize,
    pub s3_buckets: usize,
    pub sync_pairs: usize,
    pub gcs_objects: u64,
    pub s3_objects: u64,
    pub drift_missing: u64,
    pub drift_extra: u64,
    pub drift_different: u64,
    /// Sections whose listing failed.
    pub errors: u64,
    /// Whether the Gemini summary is present.
    pub summary: bool,
}

/// The report date: `{"date":"YYYY-MM-DD"}` when given (by hand or as the scheduler's input),
/// else the scheduled event's `time`, else today (UTC).
pub fn report_date(event: &Value, now: OffsetDateTime) -> Result<Date, BoxError> {
    let object = match event {
        Value::Null => return Ok(now.date()),
        Value::Object(o) => o,
        other => {
            return Err(format!(
                "unsupported event {other}: invoke with a scheduled event, `{{}}`, or \
                 `{{\"date\":\"YYYY-MM-DD\"}}`"
            )
            .into());
        }
    };
    if let Some(date) = object.get("date") {
        return date.as_str().and_then(parse_date).ok_or_else(|| {
            format!("`date` must be a calendar date YYYY-MM-DD, got {date}").into()
        });
    }
    if object.contains_key("detail-type") {
        let scheduled: EventBridgeEvent = serde_json::from_value(event.clone())
            .map_err(|e| format!("not a valid EventBridge event: {e}"))?;
        if let Some(time) = scheduled.time {
            return Ok(OffsetDateTime::from_unix_timestamp(time.timestamp())?.date());
        }
    }
    Ok(now.date())
}

fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

/// `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Builds, summarises and writes one report.
pub async fn handle(app: &App, event: Value, now: OffsetDateTime) -> Result<Response, BoxError> {
    let date = format_date(report_date(&event, now)?);
    let now = now.to_offset(time::UtcOffset::UTC);
    let time = format!("{:02}{:02}{:02}", now.hour(), now.minute(), now.second());
    let generated_at = now.replace_nanosecond(0).unwrap_or(now).format(&Rfc3339)?;
    let c = &app.settings;
    tracing::info!(
        date = %date,
        gcs_buckets = c.gcs_buckets.len(),
        s3_buckets = c.s3_buckets.len(),
        sync_pairs = c.sync_pairs.len(),
        "building report"
    );

    let (gcs, s3, drift) = tokio::join!(gcs_stats(app), s3_stats(app), drifts(app));
    let mut report = Report::new(date.clone(), generated_at, gcs, s3, drift);
    report_metrics(&report.totals).emit();

    if c.summary {
        match app.vertex.generate(&report.prompt()).await {
            Ok(summary) => report.summary = Some(summary),
            Err(e) => {
                let error = crossfed_kit::chain(&e);
                tracing::warn!(error = %error, "no summary; writing the report without it");
                report.summary_error = Some(error);
            }
        }
    }

    let json = serde_json::to_string_pretty(&report)?;
    let markdown = render::markdown(&report);
    let outputs = output::write_all(
        &app.s3,
        app.storage.as_ref(),
        &c.outputs,
        &Documents {
            date: &date,
            time: &time,
            json: &json,
            markdown: &markdown,
        },
    )
    .await?;

    let t = &report.totals;
    let response = Response {
        report_date: date,
        outputs,
        gcs_buckets: report.gcs.len(),
        s3_buckets: report.s3.len(),
        sync_pairs: report.drift.len(),
        gcs_objects: t.gcs_objects,
        s3_objects: t.s3_objects,
        drift_missing: t.drift_missing,
        drift_extra: t.drift_extra,
        drift_different: t.drift_different,
        errors: t.errors,
        summary: report.summary.is_some(),
    };
    tracing::info!(
        outputs = response.outputs.len(),
        errors = response.errors,
        summary = response.summary,
        "report written"
    );
    Ok(response)
}

fn gs(location: &Location) -> String {
    CloudLocation {
        cloud: crate::settings::Cloud::Gcs,
        location: location.clone(),
    }
    .to_string()
}

fn s3(location: &Location) -> String {
    CloudLocation {
        cloud: crate::settings::Cloud::S3,
        location: location.clone(),
    }
    .to_string()
}

async fn gcs_stats(app: &App) -> Vec<BucketStats> {
    let mut out = Vec::new();
    for location in &app.settings.gcs_buckets {
        let listing = gcs_inventory::list(&app.control, location, PAGE_SIZE);
        out.push(stats::collect(gs(location), listing, app.settings.top_n).await);
    }
    out
}

async fn s3_stats(app: &App) -> Vec<BucketStats> {
    let mut out = Vec::new();
    for location in &app.settings.s3_buckets {
        let listing = S3Listing::new(&app.s3, location, PAGE_SIZE);
        out.push(stats::collect(s3(location), listing, app.settings.top_n).await);
    }
    out
}

async fn drifts(app: &App) -> Vec<Drift> {
    let mut out = Vec::new();
    for pair in &app.settings.sync_pairs {
        out.push(
            drift::compare(
                s3(&pair.source),
                gs(&pair.destination),
                S3Listing::new(&app.s3, &pair.source, PAGE_SIZE),
                gcs_inventory::list(&app.control, &pair.destination, PAGE_SIZE),
                app.settings.drift_sample,
            )
            .await,
        );
    }
    out
}

/// The report's drift and inventory totals as CloudWatch metrics (Embedded Metric Format).
fn report_metrics(t: &crate::report::Totals) -> Metrics {
    Metrics::new("cross-cloud-report")
        .count("DriftMissing", t.drift_missing)
        .count("DriftExtra", t.drift_extra)
        .count("DriftDifferent", t.drift_different)
        .count("ListingErrors", t.errors)
        .count("GcsObjects", t.gcs_objects)
        .with("GcsBytes", t.gcs_bytes as f64, Unit::Bytes)
        .count("S3Objects", t.s3_objects)
        .with("S3Bytes", t.s3_bytes as f64, Unit::Bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap() // 2026-11-18T11:06:40Z
    }

    #[test]
    fn dates_from_events() {
        let d = |v: Value| report_date(&v, now()).map(format_date);
        assert_eq!(d(Value::Null).unwrap(), "2026-11-18");
        assert_eq!(d(json!({})).unwrap(), "2026-11-18");
        assert_eq!(d(json!({"date": "2026-11-28"})).unwrap(), "2026-11-28");
        assert_eq!(
            d(json!({
                "version": "0", "id": "53dc4d37", "detail-type": "Scheduled Event",
                "source": "aws.events", "account": "123456789012",
                "time": "2026-11-20T06:00:00Z", "region": "us-east-1",
                "resources": ["arn:aws:events:us-east-1:123456789012:rule/daily"], "detail": {}
            }))
            .unwrap(),
            "2026-11-20"
        );
        // the scheduler's custom input wins over the event time
        assert_eq!(
            d(
                json!({"detail-type": "Scheduled Event", "source": "aws.scheduler",
                     "time": "2026-11-20T06:00:00Z", "detail": {}, "date": "2026-01-02"})
            )
            .unwrap(),
            "2026-01-02"
        );
    }

    #[test]
    fn bad_dates_are_explained() {
        for bad in [
            json!({"date": "2026-02-30"}),
            json!({"date": "28.11.2026"}),
            json!({"date": 20261128}),
            json!({"date": "2026-1-02"}),
        ] {
            let e = report_date(&bad, now()).unwrap_err().to_string();
            assert!(
                e.contains("`date` must be a calendar date YYYY-MM-DD"),
                "{e}"
            );
        }
        let e = report_date(&json!("2026-11-28"), now())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsupported event"), "{e}");
        let e = report_date(&json!({"detail-type": 1}), now())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid EventBridge event"), "{e}");
    }
}
