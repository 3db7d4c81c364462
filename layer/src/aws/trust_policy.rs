//! The IAM role trust policy that lets Google service accounts assume an AWS role.

use serde_json::{Value, json};

/// A trust policy for `sts:AssumeRoleWithWebIdentity` from `accounts.google.com`, requiring
/// the token's audience (`accounts.google.com:oaud`) and one of the service accounts'
/// unique ids (`accounts.google.com:sub`).
pub fn google_trust_policy(audience: &str, subjects: &[String]) -> Value {
    let sub = match subjects {
        [one] => json!(one),
        many => json!(many),
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": "accounts.google.com" },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    "accounts.google.com:oaud": audience,
                    "accounts.google.com:sub": sub
                }
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_or_many_subjects() {
        let one = google_trust_policy("aud", &["1".into()]);
        assert_eq!(
            one["Statement"][0]["Condition"]["StringEquals"]["accounts.google.com:sub"],
            "1"
        );
        assert_eq!(
            one["Statement"][0]["Principal"]["Federated"],
            "accounts.google.com"
        );
        let many = google_trust_policy("aud", &["1".into(), "2".into()]);
        assert_eq!(
            many["Statement"][0]["Condition"]["StringEquals"]["accounts.google.com:sub"],
            json!(["1", "2"])
        );
        assert_eq!(
            many["Statement"][0]["Condition"]["StringEquals"]["accounts.google.com:oaud"],
            "aud"
        );
    }
}
