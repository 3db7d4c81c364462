//! Step 6: one Cloud Storage call with the token (list one object of `--test-bucket`, or one
//! bucket of `--project`).

use serde_json::Value;

use super::Options;
use super::report::Check;

/// Step 6 with the token of step 5 (or 4).
pub async fn test_call(opts: &Options, token: &str, sa: Option<&str>) -> Check {
    let base = opts.storage_endpoint.trim_end_matches('/');
    let (url, what, grant) = match (&opts.test_bucket, &opts.project) {
        (Some(bucket), _) => (
            format!("{base}/storage/v1/b/{bucket}/o?maxResults=1"),
            format!("listed objects of gs://{bucket}"),
            format!(
                "gcloud storage buckets add-iam-policy-binding gs://{bucket} --member=serviceAccount:{} --role=roles/storage.objectViewer",
                sa.unwrap_or("SERVICE_ACCOUNT")
            ),
        ),
        (None, Some(project)) => (
            format!("{base}/storage/v1/b?project={project}&maxResults=1"),
            format!("listed buckets of project {project}"),
            format!(
                "gcloud projects add-iam-policy-binding {project} --member=serviceAccount:{} --role=roles/storage.bucketViewer --condition=None",
                sa.unwrap_or("SERVICE_ACCOUNT")
            ),
        ),
        (None, None) => {
            return Check::skip(
                "test_call",
                "no test call: pass --test-bucket BUCKET or --project (GOOGLE_CLOUD_PROJECT)",
            );
        }
    };
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .timeout(std::time::Duration::from_secs(20))
        .send()
        .await;
    match resp {
        Ok(r) if r.status().is_success() => {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let n = body["items"].as_array().map_or(0, Vec::len);
            Check::pass("test_call", format!("{what} ({n} shown)"))
        }
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let message = body["error"]["message"].as_str().unwrap_or("").to_string();
            let fix = match status {
                401 => {
                    "the token was refused: check the scope (cloud-platform) and rerun".to_string()
                }
                403 => grant,
                404 => "the bucket or project does not exist: check the name".to_string(),
                _ => "retry later; check Cloud Storage status".to_string(),
            };
            Check::fail("test_call", format!("HTTP {status}: {message}"), fix)
        }
        Err(e) => Check::fail(
            "test_call",
            format!("Cloud Storage not reachable at {base}: {e}"),
            "check network access (or STORAGE_EMULATOR_HOST)",
        ),
    }
}
