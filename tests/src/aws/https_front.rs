//! An https front for a plain-HTTP local service (moto): TLS on a loopback port, with a
//! server certificate from a test CA generated at start, and the decrypted bytes forwarded
//! to the service unchanged — the `Host` header included, so a SigV4 signature over `host`
//! still verifies upstream. Clients that accept only https AWS endpoints (google-auth's AWS
//! source) can so be pointed at moto; whoever connects must trust [`HttpsFront::ca_pem`].
//!
//! The front answers for a host name of the caller's choice: google-auth derives the SigV4
//! service from the host's first label, so a GetCallerIdentity URL must look like
//! `https://sts.REGION.amazonaws.com:PORT/`. Clients then pin that name to
//! [`HttpsFront::addr`] (reqwest's `resolve`) instead of looking it up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use url::Url;

use crate::server::BackgroundServer;

/// Longest a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running https front; dropping it stops it.
#[derive(Debug)]
pub struct HttpsFront {
    server: BackgroundServer,
    host: String,
    ca_pem: String,
    upstream: String,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    forwarded: AtomicUsize,
    handshake_failures: AtomicUsize,
}

impl HttpsFront {
    /// Starts on an ephemeral port of 127.0.0.1 with a certificate for `host` (a DNS name,
    /// also valid for `127.0.0.1`), forwarding to `upstream` (`http://host:port`, e.g.
    /// moto's URL).
    ///
    /// # Errors
    /// When `upstream` is not an `http://` URL with a host, `host` is not a valid name, the
    /// certificates cannot be generated, or no port can be bound.
    pub fn start(upstream: &str, host: &str) -> std::io::Result<Self> {
        let url = Url::parse(upstream)
            .ok()
            .filter(|u| u.scheme() == "http")
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "HttpsFront: upstream {upstream:?} is not an http:// URL"
                ))
            })?;
        let upstream_host = url.host_str().ok_or_else(|| {
            std::io::Error::other(format!("HttpsFront: upstream {upstream:?} has no host"))
        })?;
        let authority = format!(
            "{upstream_host}:{}",
            url.port_or_known_default().unwrap_or(80)
        );
        let (ca_pem, config) = tls_config(host).map_err(std::io::Error::other)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let counters = Arc::new(Counters::default());
        let server = BackgroundServer::spawn("https-front", ([127, 0, 0, 1], 0).into(), {
            let (authority, counters) = (authority.clone(), counters.clone());
            move |listener| serve(listener, acceptor, authority, counters)
        })?;
        Ok(HttpsFront {
            server,
            host: host.to_string(),
            ca_pem,
            upstream: authority,
            counters,
        })
    }

    /// `https://HOST:PORT` (resolve HOST to [`HttpsFront::addr`]).
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.host, self.server.addr().port())
    }

    /// The host name the certificate is for.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The listening address (on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// PEM of the test CA that issued the front's certificate, generated at start; trust it
    /// for this front only.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// `host:port` the decrypted bytes go to.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// TLS connections accepted and forwarded upstream.
    pub fn connections(&self) -> usize {
        self.counters.forwarded.load(Ordering::SeqCst)
    }

    /// Connections whose TLS handshake failed (e.g. the client does not trust the CA).
    pub fn handshake_failures(&self) -> usize {
        self.counters.handshake_failures.load(Ordering::SeqCst)
    }
}

/// A fresh CA (PEM) and a server configuration presenting a certificate it issued for
/// `host` and `127.0.0.1`.
fn tls_config(host: &str) -> Result<(String, ServerConfig), String> {
    let err = |what: &str, e: &dyn std::fmt::Display| format!("HttpsFront: {what}: {e}");
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA", &e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "crossfed-tests HttpsFront CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(|e| err("CA key", &e))?;
    let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| err("CA certificate", &e))?;

    let mut leaf =
        CertificateParams::new(vec![host.to_string()]).map_err(|e| err("host name", &e))?;
    leaf.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    leaf.distinguished_name.push(DnType::CommonName, host);
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(|e| err("leaf key", &e))?;
    let leaf = leaf
        .signed_by(&leaf_key, &ca)
        .map_err(|e| err("leaf certificate", &e))?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .map_err(|e| err("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| err("TLS configuration", &e))?;
    Ok((ca.pem(), config))
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    upstream: String,
    counters: Arc<Counters>,
) {
    // Dropping the set (when the front stops) aborts open connections.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, upstream, counters) = (acceptor.clone(), upstream.clone(), counters.clone());
        connections.spawn(async move {
            let mut tls =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => tls,
                    _ => {
                        counters.handshake_failures.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                };
            let mut backend = match TcpStream::connect(&upstream).await {
                Ok(backend) => backend,
                Err(e) => {
                    // The client sees the connection close.
                    eprintln!("https front: cannot reach {upstream}: {e}");
                    return;
                }
            };
            let _ = backend.set_nodelay(true);
            counters.forwarded.fetch_add(1, Ordering::SeqCst);
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut backend).await;
        });
        // Reap finished connections so the set does not grow forever.
        while connections.try_join_next().is_some() {}
    }
}
