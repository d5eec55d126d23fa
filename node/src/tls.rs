//! TLS for the HTTP API (rustls with the ring provider; ADR 0034).
//!
//! Rules it keeps: the certificate, key and optional client CA are read and checked when the
//! node starts, so a bad file stops it before it listens; handshakes run concurrently, each
//! bounded in time, and at most `TLS_HANDSHAKES_MAX` at once, so a slow or silent client
//! cannot hold up others; with a client CA, a client without a certificate it signed never
//! gets a connection (mutual TLS).

use corridor_sdk::error::{Error, ErrorCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// Handshakes in progress at once; connections over it are closed at once.
const TLS_HANDSHAKES_MAX: usize = 256;
/// Time a client has to finish its handshake.
const TLS_HANDSHAKE_MS_MAX: u64 = 5_000;
/// Finished handshakes waiting for the server to take them.
const TLS_READY_CONNECTIONS_MAX: usize = 64;

/// Where the API's TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

fn tls_error(what: &str, path: &Path, error: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::BadRequest,
        format!("tls: {what} {}: {error}", path.display()),
    )
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|error| tls_error("cannot read", path, error))?
        .collect::<Result<_, _>>()
        .map_err(|error| tls_error("bad certificate in", path, error))?;
    if certs.is_empty() {
        return Err(tls_error("no certificate in", path, "empty"));
    }
    Ok(certs)
}

/// The server configuration, checked now (a bad file is an error at start, not a failed
/// handshake later).
pub(crate) fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|error| tls_error("bad key", &files.key, error))?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error("protocol versions for", &files.cert, error))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(ca)? {
                roots
                    .add(cert)
                    .map_err(|error| tls_error("bad CA certificate in", ca, error))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| tls_error("client CA", ca, error))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|error| tls_error("certificate and key do not match:", &files.cert, error))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener whose connections have finished a TLS handshake.
pub(crate) struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accept on `tcp`, handshaking each connection in its own task.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (ready_tx, ready) = tokio::sync::mpsc::channel(TLS_READY_CONNECTIONS_MAX);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(TLS_HANDSHAKES_MAX));
        tokio::spawn(async move {
            while !ready_tx.is_closed() {
                let (stream, address) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                    continue; // over the cap: the connection is dropped
                };
                let (acceptor, ready_tx) = (acceptor.clone(), ready_tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(Duration::from_millis(TLS_HANDSHAKE_MS_MAX), handshake).await {
                        Ok(Ok(tls)) => {
                            let _ = ready_tx.send((tls, address)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%address, %error, "tls handshake failed"),
                        Err(_) => tracing::debug!(%address, "tls handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task ended (it never does while the listener lives).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
