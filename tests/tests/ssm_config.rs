//! The credential configuration from SSM Parameter Store (moto with IAM checks on).

use std::time::Duration;

use crossfed::Error;
use crossfed::google::Credentials;
use crossfed_tests::GoogleApi;
use crossfed_tests::scenario::{ConfigShape, Scenario};

fn builder(s: &Scenario, name: &str, ssm: aws_sdk_ssm::Client) -> crossfed::google::Builder {
    Credentials::builder()
        .with_config_parameter(name)
        .with_aws_identity(
            Scenario::session_credentials(&s.cloud.role),
            s.cloud.region.clone(),
        )
        .with_ssm_client(ssm)
        .with_allow_local_endpoints(true)
        .with_context(crossfed_tests::scenario::quick_context())
}

#[tokio::test]
async fn secure_string_parameter_by_name_and_arn() {
    let s = Scenario::start().await;
    let json = s.config_json(&ConfigShape::default()).to_string();
    let name = s.put_parameter(&json, true).await;
    let creds = builder(&s, &name, s.role_ssm().await).build().unwrap();
    creds.token().await.expect("token via SecureString config");

    let arn = format!(
        "arn:aws:ssm:{}:{}:parameter{name}",
        s.cloud.region, s.cloud.account_id
    );
    let creds = builder(&s, &arn, s.role_ssm().await).build().unwrap();
    assert_eq!(
        creds.config().await.unwrap().audience,
        s.google.config().audience
    );
}

#[tokio::test]
async fn cached_with_ttl_and_last_good_served_when_ssm_fails() {
    let s = Scenario::start().await;
    let good = s.config_json(&ConfigShape::default());
    let name = s.put_parameter(&good.to_string(), false).await;
    let creds = builder(&s, &name, s.role_ssm().await)
        .with_ssm_ttl(Duration::from_millis(300))
        .build()
        .unwrap();
    assert_eq!(creds.config().await.unwrap().quota_project_id, None);

    // An update shows after the TTL, not before.
    let mut updated = good.clone();
    updated["quota_project_id"] = serde_json::json!("billing-project");
    s.write_parameter(&name, &updated.to_string(), false).await;
    assert_eq!(
        creds.config().await.unwrap().quota_project_id,
        None,
        "within the TTL"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        creds.config().await.unwrap().quota_project_id.as_deref(),
        Some("billing-project")
    );

    // An invalid update, then a deleted parameter: the last good value is served.
    s.write_parameter(&name, "{\"type\":\"oops\"}", false).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        creds.config().await.unwrap().quota_project_id.as_deref(),
        Some("billing-project")
    );
    s.admin_ssm()
        .await
        .delete_parameter()
        .name(&name)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        creds.config().await.unwrap().quota_project_id.as_deref(),
        Some("billing-project")
    );
    let token = creds.token().await.unwrap();
    assert!(!token.value.expose().is_empty());
}

#[tokio::test]
async fn missing_parameter_and_denied_parameter_are_clear() {
    let s = Scenario::start().await;
    let creds = builder(&s, "/crossfed/does-not-exist", s.role_ssm().await)
        .build()
        .unwrap();
    let err = creds.token().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ProviderFailed {
                step: crossfed::Step::Config,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("/crossfed/does-not-exist"),
        "{err}"
    );

    // Outside /crossfed/* the role has no ssm:GetParameter.
    let name = format!("/other/test-{:x}", fastrand::u64(..));
    s.write_parameter(&name, "{}", false).await;
    let err = builder(&s, &name, s.role_ssm().await)
        .build()
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&name), "{err}");
    assert_eq!(s.google.calls(GoogleApi::Sts), 0);
}

/// A wall clock moved by hand: a frozen Lambda sandbox thaws with the wall clock ahead
/// while the monotonic clock barely moved.
#[derive(Debug)]
struct ThawedClock(std::sync::Mutex<std::time::SystemTime>);

impl crossfed::Clock for ThawedClock {
    fn now(&self) -> std::time::SystemTime {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn ttl_follows_the_wall_clock_across_a_frozen_sandbox() {
    let s = Scenario::start().await;
    let good = s.config_json(&ConfigShape::default());
    let name = s.put_parameter(&good.to_string(), false).await;
    let clock = std::sync::Arc::new(ThawedClock(std::sync::Mutex::new(
        std::time::SystemTime::now(),
    )));
    let creds = builder(&s, &name, s.role_ssm().await)
        .with_context(crossfed_tests::scenario::quick_context().with_clock(clock.clone()))
        .build()
        .unwrap();
    assert_eq!(creds.config().await.unwrap().quota_project_id, None);
    let mut updated = good.clone();
    updated["quota_project_id"] = serde_json::json!("billing-project");
    s.write_parameter(&name, &updated.to_string(), false).await;
    assert_eq!(creds.config().await.unwrap().quota_project_id, None);
    // Frozen for 6 minutes (default TTL 5 minutes): the update must be picked up.
    *clock.0.lock().unwrap() += Duration::from_secs(360);
    assert_eq!(
        creds.config().await.unwrap().quota_project_id.as_deref(),
        Some("billing-project"),
        "picked up within 5 minutes of wall time"
    );
}
