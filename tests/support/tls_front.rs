//! A TLS front for the relay, as a streamer's reverse proxy (Caddy, nginx) provides one:
//! terminates TLS on `127.0.0.1:0` with a certificate for `localhost` from a throwaway CA made
//! at test time, and passes the bytes to the relay's plain port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TLS listener forwarding to `backend`; stops when dropped.
pub struct TlsFront {
    /// `https://localhost:PORT`: the relay's URL through the front.
    pub url: String,
    pub addr: SocketAddr,
    /// PEM file of the CA that signed the front's certificate (for `relay.ca_file`).
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
    task: JoinHandle<()>,
}

impl TlsFront {
    /// Serves TLS for `localhost` and forwards every connection to `backend`.
    pub async fn start(backend: SocketAddr) -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Stagehand test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca)
            .expect("leaf certificate");

        let dir = tempfile::tempdir().expect("temp dir");
        let ca_file = dir.path().join("relay-ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("writes the CA");

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        // The same provider as the engine's link (see relay_link.rs for why ring).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
            .expect("server certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that rejects the certificate ends the handshake: nothing to do.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self {
            url: format!("https://localhost:{}", addr.port()),
            addr,
            ca_file,
            _dir: dir,
            task,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}
