//! Writes the rendered report to every `REPORT_OUTPUT` location, under
//! `PREFIX/dt=YYYY-MM-DD/report-HHMMSS.{json,md}`.

use aws_sdk_s3::primitives::ByteStream;
use google_cloud_storage::client::Storage;

use crate::listing::BoxError;
use crate::settings::{Cloud, CloudLocation};

const JSON_TYPE: &str = "application/json";
const MARKDOWN_TYPE: &str = "text/markdown; charset=utf-8";

/// The rendered documents and where they go.
pub struct Documents<'a> {
    /// `YYYY-MM-DD`.
    pub date: &'a str,
    /// `HHMMSS`.
    pub time: &'a str,
    pub json: &'a str,
    pub markdown: &'a str,
}

/// `{prefix}dt={date}/report-{time}.{ext}`; `prefix` is empty or ends in `/`.
pub fn object_key(prefix: &str, date: &str, time: &str, ext: &str) -> String {
    format!("{prefix}dt={date}/report-{time}.{ext}")
}

/// Writes both documents to each output. Every output is attempted; returns the URIs written,
/// or an error naming the outputs that failed (and those that were written).
pub async fn write_all(
    s3: &aws_sdk_s3::Client,
    gcs: Option<&Storage>,
    outputs: &[CloudLocation],
    docs: &Documents<'_>,
) -> Result<Vec<String>, BoxError> {
    let mut written = Vec::new();
    let mut failures = Vec::new();
    for output in outputs {
        for (ext, body, content_type) in [
            ("json", docs.json, JSON_TYPE),
            ("md", docs.markdown, MARKDOWN_TYPE),
        ] {
            let key = object_key(&output.location.prefix, docs.date, docs.time, ext);
            let uri = format!(
                "{}://{}/{key}",
                output.cloud.scheme(),
                output.location.bucket
            );
            let result = match output.cloud {
                Cloud::S3 => put_s3(s3, &output.location.bucket, &key, body, content_type).await,
                Cloud::Gcs => match gcs {
                    Some(storage) => {
                        put_gcs(storage, &output.location.bucket, &key, body, content_type).await
                    }
                    None => Err("no GCS Storage client configured".into()),
                },
            };
            match result {
                Ok(()) => {
                    tracing::info!(uri = %uri, bytes = body.len(), "wrote report");
                    written.push(uri);
                }
                Err(e) => {
                    tracing::error!(uri = %uri, error = %e, "could not write report");
                    failures.push(format!("{uri}: {e}"));
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(written)
    } else {
        Err(format!(
            "could not write the report to {}{}",
            failures.join("; "),
            if written.is_empty() {
                String::new()
            } else {
                format!(" (written: {})", written.join(", "))
            }
        )
        .into())
    }
}

async fn put_s3(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &str,
    content_type: &str,
) -> Result<(), BoxError> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .map_err(|e| {
            format!(
                "S3 PutObject failed: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        })?;
    Ok(())
}

async fn put_gcs(
    storage: &Storage,
    bucket: &str,
    key: &str,
    body: &str,
    content_type: &str,
) -> Result<(), BoxError> {
    storage
        .write_object(
            format!("projects/_/buckets/{bucket}"),
            key,
            body.to_string(),
        )
        .set_content_type(content_type)
        .send_buffered()
        .await
        .map_err(|e| format!("GCS write failed: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_date_partitioned() {
        assert_eq!(
            object_key("daily/", "2026-11-28", "060001", "json"),
            "daily/dt=2026-11-28/report-060001.json"
        );
        assert_eq!(
            object_key("", "2026-11-28", "235959", "md"),
            "dt=2026-11-28/report-235959.md"
        );
    }
}
