//! The least Google roles of each function: one table, the one place to edit when a function
//! starts calling another Google API.

use serde::Serialize;

use super::inputs::{Inputs, bucket_of, report_bucket};

/// A Google IAM grant to a service account.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Grant {
    /// `projects/ID` or `gs://BUCKET`.
    pub resource: String,
    pub role: String,
}

/// Where a role is granted.
#[derive(Clone, Copy, Debug)]
enum On {
    /// The project (`--project-id`).
    Project,
    /// The bucket of `--sync-destination` (required).
    SyncDestination,
    /// The buckets the report inventories: the `--sync-destination` bucket (the template
    /// always inventories it) and each `--report-gcs-bucket`.
    ReportGcsBuckets,
    /// The bucket of a `gs://` `--report-output`, if any.
    ReportOutput,
}

/// Function → the least role it needs, and where. Bucket-level where the API allows.
const LEAST_ROLES: &[(&str, &str, On)] = &[
    // storage.buckets.list
    ("list-buckets", "roles/storage.bucketViewer", On::Project),
    // storage.buckets.list (the Python sample on the layer)
    (
        "python-list-buckets",
        "roles/storage.bucketViewer",
        On::Project,
    ),
    // objects: get, create, delete, list; compose
    ("gcs-sync", "roles/storage.objectUser", On::SyncDestination),
    // objects: list (the inventory)
    (
        "cross-cloud-report",
        "roles/storage.objectViewer",
        On::ReportGcsBuckets,
    ),
    // objects: create (the report)
    (
        "cross-cloud-report",
        "roles/storage.objectCreator",
        On::ReportOutput,
    ),
    // Vertex AI generateContent (the summary)
    ("cross-cloud-report", "roles/aiplatform.user", On::Project),
];

impl On {
    /// The resources this place stands for, from the flags.
    fn resources(self, inputs: &Inputs) -> Result<Vec<String>, String> {
        Ok(match self {
            On::Project => vec![format!("projects/{}", inputs.project_id)],
            On::SyncDestination => vec![sync_bucket(inputs, "gcs-sync")?],
            On::ReportGcsBuckets => {
                let mut buckets = vec![sync_bucket(inputs, "cross-cloud-report")?];
                for b in &inputs.report_gcs_buckets {
                    buckets.push(format!("gs://{}", report_bucket(b)?));
                }
                buckets
            }
            On::ReportOutput => match inputs.report_output.as_deref() {
                Some(out) if out.starts_with("gs://") => vec![bucket_of(out, "--report-output")?],
                _ => Vec::new(),
            },
        })
    }
}

/// `gs://BUCKET` of `--sync-destination`, which `function` needs.
fn sync_bucket(inputs: &Inputs, function: &str) -> Result<String, String> {
    let dest = inputs.sync_destination.as_deref().ok_or_else(|| {
        format!(
            "{function} needs --sync-destination gs://BUCKET[/PREFIX] (the SyncDestination parameter)"
        )
    })?;
    bucket_of(dest, "--sync-destination")
}

/// The grants of `function` (sorted, no duplicates), or a note when no role is known for it.
pub fn grants(function: &str, inputs: &Inputs) -> Result<(Vec<Grant>, Vec<String>), String> {
    let needs: Vec<_> = LEAST_ROLES
        .iter()
        .filter(|(f, ..)| *f == function)
        .collect();
    if needs.is_empty() {
        return Ok((
            Vec::new(),
            vec![format!(
                "no Google roles are known for `{function}`: grant its service account what it uses"
            )],
        ));
    }
    let mut grants = Vec::new();
    for (_, role, on) in needs {
        for resource in on.resources(inputs)? {
            grants.push(Grant {
                resource,
                role: role.to_string(),
            });
        }
    }
    grants.sort();
    grants.dedup();
    Ok((grants, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::super::inputs::MappingChoice;
    use super::super::plan::plan;
    use super::super::test_inputs::inputs;

    #[test]
    fn least_roles_per_function() {
        let p = plan(&inputs(3, MappingChoice::Default, false)).unwrap();
        let grants = |name: &str| -> Vec<(String, String)> {
            p.functions
                .iter()
                .find(|f| f.function == name)
                .unwrap()
                .grants
                .iter()
                .map(|g| (g.resource.clone(), g.role.clone()))
                .collect()
        };
        let g = |r: &str, role: &str| (r.to_string(), role.to_string());
        assert_eq!(
            grants("list-buckets"),
            [g("projects/my-project", "roles/storage.bucketViewer")]
        );
        assert_eq!(
            grants("gcs-sync"),
            [g("gs://my-sync-bucket", "roles/storage.objectUser")]
        );
        assert_eq!(
            grants("cross-cloud-report"),
            [
                g("gs://archive-bucket", "roles/storage.objectViewer"),
                g("gs://my-reports", "roles/storage.objectCreator"),
                g("gs://my-sync-bucket", "roles/storage.objectViewer"),
                g("projects/my-project", "roles/aiplatform.user"),
            ]
        );
    }
}
