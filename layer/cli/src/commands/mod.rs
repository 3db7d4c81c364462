//! One file per subcommand.

pub mod aws;
pub mod bootstrap;
pub mod bootstrap_plan;
pub mod config;
pub mod doctor;
pub mod token;
pub mod whoami;
