//! AWS, local: moto as `make test` starts it ([`localcloud`]) and a TLS front for its STS.

pub(crate) mod https_front;
pub mod localcloud;
