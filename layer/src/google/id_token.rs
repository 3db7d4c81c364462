//! Google ID tokens of the impersonated service account: IAM Credentials `generateIdToken`,
//! authorised by the same federated (STS) token the access tokens use.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::aws::IdToken;
use crate::aws::id_token::decode_claims;
use crate::error::{Error, Result, Step};
use crate::secret::Secret;
use crate::transport::Transport;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    audience: &'a str,
    include_email: bool,
}

#[derive(Deserialize)]
struct Response {
    token: String,
}

/// The `generateIdToken` URL next to the configured `generateAccessToken` URL.
pub(crate) fn url(impersonation_url: &Url) -> Result<Url> {
    let path = impersonation_url.path();
    let base = path.strip_suffix(":generateAccessToken").ok_or_else(|| {
        Error::invalid(
            "service_account_impersonation_url",
            "does not end in `:generateAccessToken`, so the generateIdToken URL cannot be derived",
        )
    })?;
    let mut url = impersonation_url.clone();
    url.set_path(&format!("{base}:generateIdToken"));
    url.set_query(None);
    Ok(url)
}

/// Calls `generateIdToken` with the federated token.
pub(crate) async fn generate(
    transport: &Transport,
    url: &Url,
    federated: &Secret,
    audience: &str,
    include_email: bool,
) -> Result<IdToken> {
    let body = Request {
        audience,
        include_email,
    };
    let parsed: Response = transport
        .send_json(Step::IdToken, "IAM Credentials", |http| {
            http.post(url.clone())
                .bearer_auth(federated.expose())
                .json(&body)
        })
        .await?;
    let claims = decode_claims(&parsed.token)?;
    Ok(IdToken {
        jwt: Secret::new(parsed.token),
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_id_token_url() {
        let imp = Url::parse("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken").unwrap();
        assert_eq!(
            url(&imp).unwrap().as_str(),
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateIdToken"
        );
        assert!(url(&Url::parse("https://example.com/x").unwrap()).is_err());
    }
}
