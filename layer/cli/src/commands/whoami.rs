//! `crossfed whoami`: the AWS caller and the Google principals it maps to.

use super::config::ConfigArgs;

pub async fn run(config: ConfigArgs) -> crossfed::Result<()> {
    let me = config.builder().build()?.whoami().await?;
    println!("aws_arn: {}", me.aws_arn);
    println!("aws_role: {}", me.aws_role);
    println!("google_subject: {}", me.google_subject);
    println!("google_principal_set: {}", me.google_principal_set);
    if let Some(sa) = me.service_account {
        println!("service_account: {sa}");
    }
    Ok(())
}
