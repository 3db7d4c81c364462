#!/bin/sh
# crossfed bootstrap: Workload Identity Federation for stack crossfed (AWS account 111122223333) in Google Cloud project my-project.
# Provider audience: //iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/providers/aws-111122223333
set -eu

# Functions:
#   cross-cloud-report: role arn:aws:iam::111122223333:role/crossfed-CrossCloudReportFunctionRole-MnOpQr345678 -> attribute.aws_role arn:aws:sts::111122223333:assumed-role/crossfed-CrossCloudReportFunctionRole-MnOpQr345678 -> crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com
#   gcs-sync: role arn:aws:iam::111122223333:role/crossfed-GcsSyncFunctionRole-GhIjKl789012 -> attribute.aws_role arn:aws:sts::111122223333:assumed-role/crossfed-GcsSyncFunctionRole-GhIjKl789012 -> crossfed-gcs-sync@my-project.iam.gserviceaccount.com
#   list-buckets: role arn:aws:iam::111122223333:role/crossfed-ListBucketsFunctionRole-AbCdEf123456 -> attribute.aws_role arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsFunctionRole-AbCdEf123456 -> crossfed-list-buckets@my-project.iam.gserviceaccount.com

# Workload identity pool aws-lambda
if gcloud iam workload-identity-pools describe aws-lambda --project=my-project --location=global >/dev/null 2>&1; then
  if [ "$(gcloud iam workload-identity-pools describe aws-lambda --project=my-project --location=global '--format=value(state)' 2>/dev/null)" = DELETED ]; then
    echo 'crossfed bootstrap: workload identity pool aws-lambda is soft-deleted: restore it with `gcloud iam workload-identity-pools undelete aws-lambda --project=my-project --location=global`, then run this script again' >&2
    exit 1
  fi
  if [ "$(gcloud iam workload-identity-pools describe aws-lambda --project=my-project --location=global '--format=value(disabled)' 2>/dev/null)" = True ]; then
    echo 'crossfed bootstrap: workload identity pool aws-lambda is disabled: enable it with `gcloud iam workload-identity-pools update aws-lambda --project=my-project --location=global --no-disabled`, then run this script again' >&2
    exit 1
  fi
else
  gcloud iam workload-identity-pools create aws-lambda --project=my-project --location=global '--display-name=AWS Lambda (crossfed)'
fi

# AWS provider aws-111122223333: account 111122223333, admits exactly the stack's roles
if gcloud iam workload-identity-pools providers describe aws-111122223333 --project=my-project --location=global --workload-identity-pool=aws-lambda >/dev/null 2>&1; then
  if [ "$(gcloud iam workload-identity-pools providers describe aws-111122223333 --project=my-project --location=global --workload-identity-pool=aws-lambda '--format=value(state)' 2>/dev/null)" = DELETED ]; then
    echo 'crossfed bootstrap: provider aws-111122223333 is soft-deleted: restore it with `gcloud iam workload-identity-pools providers undelete aws-111122223333 --project=my-project --location=global --workload-identity-pool=aws-lambda`, then run this script again' >&2
    exit 1
  fi
  if [ "$(gcloud iam workload-identity-pools providers describe aws-111122223333 --project=my-project --location=global --workload-identity-pool=aws-lambda '--format=value(disabled)' 2>/dev/null)" = True ]; then
    echo 'crossfed bootstrap: provider aws-111122223333 is disabled: enable it with `gcloud iam workload-identity-pools providers update-aws aws-111122223333 --project=my-project --location=global --workload-identity-pool=aws-lambda --no-disabled`, then run this script again' >&2
    exit 1
  fi
  if [ "$(gcloud iam workload-identity-pools providers describe aws-111122223333 --project=my-project --location=global --workload-identity-pool=aws-lambda '--format=value(aws.accountId)' 2>/dev/null)" != 111122223333 ]; then
    echo 'crossfed bootstrap: provider aws-111122223333 admits another AWS account than 111122223333 (or its account could not be read): pass --provider with another ID (one provider per account)' >&2
    exit 1
  fi
  gcloud iam workload-identity-pools providers update-aws aws-111122223333 --project=my-project --location=global --workload-identity-pool=aws-lambda "--attribute-mapping=google.subject=assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn,attribute.aws_role=assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn" "--attribute-condition=attribute.aws_role in ['arn:aws:sts::111122223333:assumed-role/crossfed-CrossCloudReportFunctionRole-MnOpQr345678', 'arn:aws:sts::111122223333:assumed-role/crossfed-GcsSyncFunctionRole-GhIjKl789012', 'arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsFunctionRole-AbCdEf123456']"
else
  gcloud iam workload-identity-pools providers create-aws aws-111122223333 --project=my-project --location=global --workload-identity-pool=aws-lambda --account-id=111122223333 "--attribute-mapping=google.subject=assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn,attribute.aws_role=assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn" "--attribute-condition=attribute.aws_role in ['arn:aws:sts::111122223333:assumed-role/crossfed-CrossCloudReportFunctionRole-MnOpQr345678', 'arn:aws:sts::111122223333:assumed-role/crossfed-GcsSyncFunctionRole-GhIjKl789012', 'arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsFunctionRole-AbCdEf123456']"
fi

# Service account of cross-cloud-report
gcloud iam service-accounts describe crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com --project=my-project >/dev/null 2>&1 ||
  gcloud iam service-accounts create crossfed-cross-cloud-report --project=my-project '--display-name=crossfed cross-cloud-report'

# Service account of gcs-sync
gcloud iam service-accounts describe crossfed-gcs-sync@my-project.iam.gserviceaccount.com --project=my-project >/dev/null 2>&1 ||
  gcloud iam service-accounts create crossfed-gcs-sync --project=my-project '--display-name=crossfed gcs-sync'

# Service account of list-buckets
gcloud iam service-accounts describe crossfed-list-buckets@my-project.iam.gserviceaccount.com --project=my-project >/dev/null 2>&1 ||
  gcloud iam service-accounts create crossfed-list-buckets --project=my-project '--display-name=crossfed list-buckets'

# cross-cloud-report: its role may impersonate crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com --project=my-project --role=roles/iam.workloadIdentityUser --member=principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/attribute.aws_role/arn:aws:sts::111122223333:assumed-role/crossfed-CrossCloudReportFunctionRole-MnOpQr345678 --condition=None

# gcs-sync: its role may impersonate crossfed-gcs-sync@my-project.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding crossfed-gcs-sync@my-project.iam.gserviceaccount.com --project=my-project --role=roles/iam.workloadIdentityUser --member=principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/attribute.aws_role/arn:aws:sts::111122223333:assumed-role/crossfed-GcsSyncFunctionRole-GhIjKl789012 --condition=None

# list-buckets: its role may impersonate crossfed-list-buckets@my-project.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding crossfed-list-buckets@my-project.iam.gserviceaccount.com --project=my-project --role=roles/iam.workloadIdentityUser --member=principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/attribute.aws_role/arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsFunctionRole-AbCdEf123456 --condition=None

# Custom role crossfedObjectLister: only storage.objects.list
if gcloud iam roles describe crossfedObjectLister --project=my-project >/dev/null 2>&1; then
  if [ "$(gcloud iam roles describe crossfedObjectLister --project=my-project '--format=value(deleted)' 2>/dev/null)" = True ]; then
    echo 'crossfed bootstrap: custom role crossfedObjectLister is deleted: restore it with `gcloud iam roles undelete crossfedObjectLister --project=my-project`, then run this script again' >&2
    exit 1
  fi
  gcloud iam roles update crossfedObjectLister --project=my-project '--title=crossfed: list objects' --permissions=storage.objects.list --stage=GA --quiet
else
  gcloud iam roles create crossfedObjectLister --project=my-project '--title=crossfed: list objects' --permissions=storage.objects.list --stage=GA
fi

# Custom role crossfedGeminiCaller: only aiplatform.endpoints.predict
if gcloud iam roles describe crossfedGeminiCaller --project=my-project >/dev/null 2>&1; then
  if [ "$(gcloud iam roles describe crossfedGeminiCaller --project=my-project '--format=value(deleted)' 2>/dev/null)" = True ]; then
    echo 'crossfed bootstrap: custom role crossfedGeminiCaller is deleted: restore it with `gcloud iam roles undelete crossfedGeminiCaller --project=my-project`, then run this script again' >&2
    exit 1
  fi
  gcloud iam roles update crossfedGeminiCaller --project=my-project '--title=crossfed: call Gemini (generateContent)' --permissions=aiplatform.endpoints.predict --stage=GA --quiet
else
  gcloud iam roles create crossfedGeminiCaller --project=my-project '--title=crossfed: call Gemini (generateContent)' --permissions=aiplatform.endpoints.predict --stage=GA
fi

# cross-cloud-report: projects/my-project/roles/crossfedObjectLister on gs://archive-bucket
gcloud storage buckets add-iam-policy-binding gs://archive-bucket --member=serviceAccount:crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com --role=projects/my-project/roles/crossfedObjectLister --condition=None

# cross-cloud-report: roles/storage.objectCreator on gs://my-reports
gcloud storage buckets add-iam-policy-binding gs://my-reports --member=serviceAccount:crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com --role=roles/storage.objectCreator --condition=None

# cross-cloud-report: projects/my-project/roles/crossfedObjectLister on gs://my-sync-bucket
gcloud storage buckets add-iam-policy-binding gs://my-sync-bucket --member=serviceAccount:crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com --role=projects/my-project/roles/crossfedObjectLister --condition=None

# cross-cloud-report: projects/my-project/roles/crossfedGeminiCaller on projects/my-project
gcloud projects add-iam-policy-binding my-project --member=serviceAccount:crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com --role=projects/my-project/roles/crossfedGeminiCaller --condition=None

# gcs-sync: roles/storage.objectUser on gs://my-sync-bucket
gcloud storage buckets add-iam-policy-binding gs://my-sync-bucket --member=serviceAccount:crossfed-gcs-sync@my-project.iam.gserviceaccount.com --role=roles/storage.objectUser --condition=None

# list-buckets: roles/storage.bucketViewer on projects/my-project
gcloud projects add-iam-policy-binding my-project --member=serviceAccount:crossfed-list-buckets@my-project.iam.gserviceaccount.com --role=roles/storage.bucketViewer --condition=None

# Credential configuration for crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com (what `gcloud iam workload-identity-pools create-cred-config projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/providers/aws-111122223333 --service-account=crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com --aws` writes)
cat > cred-config-cross-cloud-report.json <<'JSON'
{
  "universe_domain": "googleapis.com",
  "type": "external_account",
  "audience": "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/providers/aws-111122223333",
  "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
  "token_url": "https://sts.googleapis.com/v1/token",
  "credential_source": {
    "environment_id": "aws1",
    "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
    "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
    "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
  },
  "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com:generateAccessToken"
}
JSON

# Credential configuration for crossfed-gcs-sync@my-project.iam.gserviceaccount.com (what `gcloud iam workload-identity-pools create-cred-config projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/providers/aws-111122223333 --service-account=crossfed-gcs-sync@my-project.iam.gserviceaccount.com --aws` writes)
cat > cred-config-gcs-sync.json <<'JSON'
{
  "universe_domain": "googleapis.com",
  "type": "external_account",
  "audience": "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/providers/aws-111122223333",
  "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
  "token_url": "https://sts.googleapis.com/v1/token",
  "credential_source": {
    "environment_id": "aws1",
    "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
    "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
    "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
  },
  "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/crossfed-gcs-sync@my-project.iam.gserviceaccount.com:generateAccessToken"
}
JSON

# Credential configuration for crossfed-list-buckets@my-project.iam.gserviceaccount.com (what `gcloud iam workload-identity-pools create-cred-config projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/providers/aws-111122223333 --service-account=crossfed-list-buckets@my-project.iam.gserviceaccount.com --aws` writes)
cat > cred-config-list-buckets.json <<'JSON'
{
  "universe_domain": "googleapis.com",
  "type": "external_account",
  "audience": "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/providers/aws-111122223333",
  "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
  "token_url": "https://sts.googleapis.com/v1/token",
  "credential_source": {
    "environment_id": "aws1",
    "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
    "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
    "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
  },
  "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/crossfed-list-buckets@my-project.iam.gserviceaccount.com:generateAccessToken"
}
JSON

# Credential configuration for crossfed-cross-cloud-report@my-project.iam.gserviceaccount.com
aws ssm put-parameter --name=/crossfed/cross-cloud-report/google-credential-config --type=SecureString --key-id=alias/crossfed --value=file://cred-config-cross-cloud-report.json --overwrite --region=eu-west-1

# Credential configuration for crossfed-gcs-sync@my-project.iam.gserviceaccount.com
aws ssm put-parameter --name=/crossfed/gcs-sync/google-credential-config --type=SecureString --key-id=alias/crossfed --value=file://cred-config-gcs-sync.json --overwrite --region=eu-west-1

# Credential configuration for crossfed-list-buckets@my-project.iam.gserviceaccount.com
aws ssm put-parameter --name=/crossfed/list-buckets/google-credential-config --type=SecureString --key-id=alias/crossfed --value=file://cred-config-list-buckets.json --overwrite --region=eu-west-1

# SAM parameter overrides:
# sam deploy --stack-name crossfed --parameter-overrides CrossCloudReportConfigParameterName=/crossfed/cross-cloud-report/google-credential-config GcsSyncConfigParameterName=/crossfed/gcs-sync/google-credential-config GoogleCloudProject=my-project GoogleCredentialConfigParameterName=/crossfed/google-credential-config ListBucketsConfigParameterName=/crossfed/list-buckets/google-credential-config ReportGcsBuckets=archive-bucket SyncDestination=gs://my-sync-bucket/from-s3 VertexLocation=us-central1
echo 'Google Cloud is set up. Redeploy with: sam deploy --stack-name crossfed --parameter-overrides CrossCloudReportConfigParameterName=/crossfed/cross-cloud-report/google-credential-config GcsSyncConfigParameterName=/crossfed/gcs-sync/google-credential-config GoogleCloudProject=my-project GoogleCredentialConfigParameterName=/crossfed/google-credential-config ListBucketsConfigParameterName=/crossfed/list-buckets/google-credential-config ReportGcsBuckets=archive-bucket SyncDestination=gs://my-sync-bucket/from-s3 VertexLocation=us-central1'
