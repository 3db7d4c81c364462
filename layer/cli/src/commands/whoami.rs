//! `crossfed whoami`: the AWS caller and the Google principals it maps to, under the
//! provider's attribute mapping (Google's default AWS mapping unless one is given).

use crossfed::google::AttributeMapping;

use super::Outcome;
use super::config::ConfigArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// The provider's attribute mapping (`google.subject=…,attribute.aws_role=…` or JSON);
    /// default: Google's default AWS mapping.
    #[arg(long)]
    attribute_mapping: Option<String>,
}

/// Prints the caller and its principals.
pub async fn run(args: Args) -> Outcome {
    let mapping = match &args.attribute_mapping {
        Some(text) => Some(
            AttributeMapping::parse(text)
                .map_err(|e| crossfed::Error::NotConfigured(format!("--attribute-mapping: {e}")))?,
        ),
        None => None,
    };
    let me = args
        .config
        .builder()
        .build()?
        .whoami_with(mapping.as_ref())
        .await?;
    println!("aws_arn: {}", me.aws_arn);
    if me.default_mapping {
        println!(
            "mapping: Google's default AWS mapping (pass --attribute-mapping if the provider uses another)"
        );
    } else {
        println!("mapping: --attribute-mapping");
    }
    for (k, v) in &me.attributes {
        println!("{k}: {v}");
    }
    println!("google_subject: {}", me.google_subject);
    match &me.google_principal_set {
        Some(set) => println!("google_principal_set: {set}"),
        None => println!("google_principal_set: (the mapping sets no attribute.aws_role)"),
    }
    if let Some(sa) = me.service_account {
        println!("service_account: {sa}");
    }
    Ok(())
}
