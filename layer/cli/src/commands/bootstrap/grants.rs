//! The least Google roles of each function: one table, the one place to edit when a function
//! starts calling another Google API. Where no predefined role is narrow enough, a custom role
//! of the project holds exactly the permissions the function calls (the script creates it).

use serde::Serialize;

use super::inputs::{Inputs, bucket_of, report_bucket};

/// A Google IAM grant to a service account.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Grant {
    /// `projects/ID` or `gs://BUCKET`.
    pub resource: String,
    pub role: String,
    /// An IAM condition narrowing the grant (`--prefix-condition`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<IamCondition>,
}

/// An IAM condition, as `gcloud … --condition-from-file` reads it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct IamCondition {
    pub title: String,
    pub expression: String,
}

/// gcs-sync's grant limited to the destination prefix, where it reads and writes everything
/// (copies, `.crossfed-parts/`, `.crossfed/backfill/`): objects under it, and listings of it.
/// Needs uniform bucket-level access on the bucket (Google's rule for IAM conditions).
fn prefix_condition(inputs: &Inputs) -> Result<Option<IamCondition>, String> {
    if !inputs.prefix_condition {
        return Ok(None);
    }
    let dest = inputs.sync_destination.as_deref().unwrap_or_default();
    let rest = dest.trim_start_matches("gs://");
    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Err(format!(
            "--prefix-condition: --sync-destination {dest} has no prefix; the grant is the whole bucket's"
        ));
    }
    let cel = |s: &str| s.replace('\\', "\\\\").replace('\'', "\\'");
    let prefix = cel(&format!("{path}/"));
    Ok(Some(IamCondition {
        title: "crossfed gcs-sync: the destination prefix only".into(),
        expression: format!(
            "resource.name.startsWith('projects/_/buckets/{bucket}/objects/{prefix}') || api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('{prefix}')"
        ),
    }))
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

/// A role bootstrap creates in the project, with just the permissions a function calls.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct CustomRole {
    /// The role ID in the project (`projects/P/roles/ID`).
    pub id: &'static str,
    /// Its title in the console.
    pub title: &'static str,
    /// Exactly the permissions it holds.
    pub permissions: &'static [&'static str],
}

/// The report lists objects (never reads them): not `roles/storage.objectViewer`.
pub const OBJECT_LISTER: CustomRole = CustomRole {
    id: "crossfedObjectLister",
    title: "crossfed: list objects",
    permissions: &["storage.objects.list"],
};

/// The report calls Gemini's `generateContent`: not `roles/aiplatform.user` (which also
/// runs custom jobs, a known escalation path).
pub const GEMINI_CALLER: CustomRole = CustomRole {
    id: "crossfedGeminiCaller",
    title: "crossfed: call Gemini (generateContent)",
    permissions: &["aiplatform.endpoints.predict"],
};

/// A predefined role or one of bootstrap's custom roles.
#[derive(Debug)]
enum Role {
    Google(&'static str),
    Custom(&'static CustomRole),
}

/// Function → the least role it needs, and where. Bucket-level where the API allows.
const LEAST_ROLES: &[(&str, Role, On)] = &[
    // storage.buckets.list
    (
        "list-buckets",
        Role::Google("roles/storage.bucketViewer"),
        On::Project,
    ),
    // storage.buckets.list (the Python sample on the layer)
    (
        "python-list-buckets",
        Role::Google("roles/storage.bucketViewer"),
        On::Project,
    ),
    // objects: get, create, delete, list; compose
    (
        "gcs-sync",
        Role::Google("roles/storage.objectUser"),
        On::SyncDestination,
    ),
    // objects: list (the inventory)
    (
        "cross-cloud-report",
        Role::Custom(&OBJECT_LISTER),
        On::ReportGcsBuckets,
    ),
    // objects: create (the report)
    (
        "cross-cloud-report",
        Role::Google("roles/storage.objectCreator"),
        On::ReportOutput,
    ),
    // Vertex AI generateContent (the summary)
    (
        "cross-cloud-report",
        Role::Custom(&GEMINI_CALLER),
        On::Project,
    ),
];

/// `projects/PROJECT/roles/ID`: how a custom role is granted.
pub fn custom_role_name(project_id: &str, role: &CustomRole) -> String {
    format!("projects/{project_id}/roles/{}", role.id)
}

/// The custom roles `grants` use, each once, in the table's order.
pub fn custom_roles_of<'a>(
    project_id: &str,
    grants: impl Iterator<Item = &'a Grant>,
) -> Vec<&'static CustomRole> {
    let grants: Vec<&Grant> = grants.collect();
    [&OBJECT_LISTER, &GEMINI_CALLER]
        .into_iter()
        .filter(|c| {
            let name = custom_role_name(project_id, c);
            grants.iter().any(|g| g.role == name)
        })
        .collect()
}

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
        let role = match role {
            Role::Google(name) => name.to_string(),
            Role::Custom(custom) => custom_role_name(&inputs.project_id, custom),
        };
        let condition = match on {
            On::SyncDestination => prefix_condition(inputs)?,
            _ => None,
        };
        for resource in on.resources(inputs)? {
            grants.push(Grant {
                resource,
                role: role.clone(),
                condition: condition.clone(),
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
                g(
                    "gs://archive-bucket",
                    "projects/my-project/roles/crossfedObjectLister"
                ),
                g("gs://my-reports", "roles/storage.objectCreator"),
                g(
                    "gs://my-sync-bucket",
                    "projects/my-project/roles/crossfedObjectLister"
                ),
                g(
                    "projects/my-project",
                    "projects/my-project/roles/crossfedGeminiCaller"
                ),
            ]
        );
    }

    #[test]
    fn the_prefix_condition_limits_gcs_sync_to_its_prefix() {
        let mut i = inputs(3, MappingChoice::Default, false);
        i.prefix_condition = true;
        i.sync_destination = Some("gs://my-sync-bucket/from-s3/it's\\".into());
        let p = plan(&i).unwrap();
        let sync = p
            .functions
            .iter()
            .find(|f| f.function == "gcs-sync")
            .unwrap();
        let condition = sync.grants[0].condition.as_ref().unwrap();
        assert_eq!(
            condition.expression,
            r"resource.name.startsWith('projects/_/buckets/my-sync-bucket/objects/from-s3/it\'s\\/') || api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('from-s3/it\'s\\/')"
        );
        // Only gcs-sync's grant: the report still lists the whole bucket.
        let report = p
            .functions
            .iter()
            .find(|f| f.function == "cross-cloud-report")
            .unwrap();
        assert!(report.grants.iter().all(|g| g.condition.is_none()));
        i.sync_destination = Some("gs://my-sync-bucket".into());
        assert!(plan(&i).unwrap_err().contains("has no prefix"));
    }
}
