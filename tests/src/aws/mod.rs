//! AWS, local: moto as `make test` starts it ([`localcloud`]), a TLS front for its STS, and
//! a container credentials endpoint.

pub(crate) mod container_credentials;
pub(crate) mod https_front;
pub mod localcloud;
