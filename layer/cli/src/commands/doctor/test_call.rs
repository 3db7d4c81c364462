//! Step 6: one Cloud Storage call with the token (list one object of `--test-bucket`, or one
//! bucket of `--project`).

use super::http::get_json;
use super::options::Options;
use super::report::Check;

/// Step 6 with the token of step 5 (or 4).
pub async fn test_call(opts: &Options, token: &str, sa: Option<&str>, universe: &str) -> Check {
    let base = match crossfed::check_google_api(
        "STORAGE_EMULATOR_HOST",
        &opts.storage_endpoint,
        "storage",
        universe,
        opts.allow_local,
    ) {
        Ok(url) => url.as_str().trim_end_matches('/').to_string(),
        Err(e) => {
            return Check::fail(
                "test_call",
                format!(
                    "the test call would send the service account's token to {}: {e}",
                    opts.storage_endpoint
                ),
                "unset STORAGE_EMULATOR_HOST (or point it at a loopback emulator with CROSSFED_ALLOW_LOCAL_ENDPOINTS=1)",
            );
        }
    };
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    };
    let (url, what, grant) = match (&opts.test_bucket, &opts.project) {
        (Some(bucket), _) if !name_ok(bucket) => {
            return Check::fail(
                "test_call",
                format!("--test-bucket {bucket:?} is not a bucket name"),
                "pass the bucket's name (a-z, 0-9, -, _ and .), without gs://",
            );
        }
        (None, Some(project)) if !name_ok(project) => {
            return Check::fail(
                "test_call",
                format!("--project {project:?} is not a project ID"),
                "pass the project ID (a-z, 0-9 and -)",
            );
        }
        (Some(bucket), _) => (
            format!("{base}/storage/v1/b/{bucket}/o?maxResults=1"),
            format!("listed objects of gs://{bucket}"),
            format!(
                "gcloud storage buckets add-iam-policy-binding gs://{bucket} --member=serviceAccount:{} --role=roles/storage.objectViewer --condition=None",
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
    match get_json(&url, token).await {
        Ok((status, body)) if (200..300).contains(&status) => {
            let n = body["items"].as_array().map_or(0, Vec::len);
            Check::pass("test_call", format!("{what} ({n} shown)"))
        }
        Ok((status, body)) => {
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
            format!("Cloud Storage at {base}: {e}"),
            "check network access (or STORAGE_EMULATOR_HOST)",
        ),
    }
}
