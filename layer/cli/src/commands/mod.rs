//! One file per subcommand.

pub mod aws;
pub mod config;
pub mod token;
pub mod whoami;
