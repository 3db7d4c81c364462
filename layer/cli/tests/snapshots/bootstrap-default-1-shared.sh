#!/bin/sh
# crossfed bootstrap: Workload Identity Federation for stack crossfed (AWS account 111122223333) in Google Cloud project my-project.
# Provider audience: //iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/providers/aws-111122223333
set -eu

# Functions:
#   list-buckets: role arn:aws:iam::111122223333:role/crossfed-ListBucketsFunctionRole-AbCdEf123456 -> attribute.aws_role arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsFunctionRole-AbCdEf123456 -> crossfed@my-project.iam.gserviceaccount.com

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
  gcloud iam workload-identity-pools providers update-aws aws-111122223333 --project=my-project --location=global --workload-identity-pool=aws-lambda "--attribute-mapping=google.subject=assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn,attribute.aws_role=assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn" "--attribute-condition=attribute.aws_role in ['arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsFunctionRole-AbCdEf123456']"
else
  gcloud iam workload-identity-pools providers create-aws aws-111122223333 --project=my-project --location=global --workload-identity-pool=aws-lambda --account-id=111122223333 "--attribute-mapping=google.subject=assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn,attribute.aws_role=assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn" "--attribute-condition=attribute.aws_role in ['arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsFunctionRole-AbCdEf123456']"
fi

# Service account of list-buckets
gcloud iam service-accounts describe crossfed@my-project.iam.gserviceaccount.com --project=my-project >/dev/null 2>&1 ||
  gcloud iam service-accounts create crossfed --project=my-project '--display-name=crossfed list-buckets'

# list-buckets: its role may impersonate crossfed@my-project.iam.gserviceaccount.com
gcloud iam service-accounts add-iam-policy-binding crossfed@my-project.iam.gserviceaccount.com --project=my-project --role=roles/iam.workloadIdentityUser --member=principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/attribute.aws_role/arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsFunctionRole-AbCdEf123456 --condition=None

# list-buckets: roles/storage.bucketViewer on projects/my-project
gcloud projects add-iam-policy-binding my-project --member=serviceAccount:crossfed@my-project.iam.gserviceaccount.com --role=roles/storage.bucketViewer --condition=None

# Credential configuration for crossfed@my-project.iam.gserviceaccount.com (what `gcloud iam workload-identity-pools create-cred-config projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/providers/aws-111122223333 --service-account=crossfed@my-project.iam.gserviceaccount.com --aws` writes)
cat > cred-config.json <<'JSON'
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
  "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/crossfed@my-project.iam.gserviceaccount.com:generateAccessToken"
}
JSON

# Credential configuration for crossfed@my-project.iam.gserviceaccount.com
aws ssm put-parameter --name=/crossfed/google-credential-config --type=String --value=file://cred-config.json --overwrite --region=eu-west-1

# SAM parameter overrides:
# sam deploy --stack-name crossfed --parameter-overrides GoogleCloudProject=my-project GoogleCredentialConfigParameterName=/crossfed/google-credential-config ReportGcsBuckets=archive-bucket SyncDestination=gs://my-sync-bucket/from-s3 VertexLocation=us-central1
echo 'Google Cloud is set up. Redeploy with: sam deploy --stack-name crossfed --parameter-overrides GoogleCloudProject=my-project GoogleCredentialConfigParameterName=/crossfed/google-credential-config ReportGcsBuckets=archive-bucket SyncDestination=gs://my-sync-bucket/from-s3 VertexLocation=us-central1'
