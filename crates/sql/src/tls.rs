//! TLS for database connections: rustls (the aws-lc-rs provider reqwest already uses), the
//! system's roots plus an optional CA file, the server's name checked (`verify-full`); or, for
//! `prefer` (libpq's default, which deployments of the reference service rely on), encryption
//! with the certificate accepted unchecked — the handshake's signatures are still verified, so
//! the session is encrypted to whoever holds the key of the certificate shown.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use mysql_async::SslOpts;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_rustls::TlsConnector;

use crate::{SqlOptions, SqlTls};

/// The TLS connector and libpq-style mode of a PostgreSQL connection made with `options`:
/// `None` for `disable`. A CA file with `prefer`, which checks no certificate, is refused.
pub(crate) fn pg_tls(options: &SqlOptions) -> Result<(Option<RustlsConnect>, SslMode), String> {
    match options.tls {
        SqlTls::VerifyFull => Ok((
            Some(RustlsConnect::new(options.ca_file.as_deref())?),
            SslMode::Require,
        )),
        SqlTls::Prefer => {
            no_ca_file_with_prefer(options)?;
            Ok((Some(RustlsConnect::unverified()?), SslMode::Prefer))
        }
        SqlTls::Disable => Ok((None, SslMode::Disable)),
    }
}

/// The TLS options of a MySQL connection made with `options` (mysql_async's rustls, the CA
/// file added to its roots): `None` for `disable`. A CA file with `prefer` is refused.
pub(crate) fn my_tls(options: &SqlOptions) -> Result<Option<SslOpts>, String> {
    match options.tls {
        SqlTls::VerifyFull => {
            let mut ssl = SslOpts::default();
            if let Some(ca) = &options.ca_file {
                if !ca.is_file() {
                    return Err(format!("the CA file {} cannot be read", ca.display()));
                }
                ssl = ssl.with_root_certs(vec![ca.clone().into()]);
            }
            Ok(Some(ssl))
        }
        SqlTls::Prefer => {
            no_ca_file_with_prefer(options)?;
            Ok(Some(
                SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            ))
        }
        SqlTls::Disable => Ok(None),
    }
}

/// `prefer` checks no certificate, so a CA file given with it would be silently ignored.
fn no_ca_file_with_prefer(options: &SqlOptions) -> Result<(), String> {
    match &options.ca_file {
        Some(ca) => Err(format!(
            "the CA file {} is set, but TLS mode prefer checks no certificate: use \
             verify-full to check the server against it, or remove it",
            ca.display()
        )),
        None => Ok(()),
    }
}

/// A [`MakeTlsConnect`] for tokio-postgres over rustls.
#[derive(Clone)]
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
}

impl RustlsConnect {
    /// Trusts the system's roots and the certificates of `ca_file`.
    pub(crate) fn new(ca_file: Option<&Path>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A system root rustls cannot parse is skipped, as every client does.
            let _ = roots.add(cert);
        }
        if let Some(path) = ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("the CA file {} cannot be read: {e}", path.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("the CA file {} is not PEM: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "the CA file {} holds no certificate",
                    path.display()
                ));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    format!("a certificate of {} is not usable: {e}", path.display())
                })?;
            }
        }
        if roots.is_empty() {
            return Err(
                "no CA certificates to check the database's certificate with: install the \
                 system's CA bundle or set PUBLISH_SQL_CA_FILE"
                    .to_owned(),
            );
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// Accepts any certificate (`prefer`): encrypted, not authenticated.
    pub(crate) fn unverified() -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(AnyCertificate(Arc::clone(&provider)));
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

/// The verifier of `prefer`: any certificate for any name, but the handshake's signatures
/// checked with the provider's algorithms (so the peer holds the certificate's key).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsHandshake;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsHandshake, io::Error> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsHandshake {
            name,
            connector: TlsConnector::from(Arc::clone(&self.config)),
        })
    }
}

/// One TLS handshake to a named server.
pub(crate) struct RustlsHandshake {
    name: ServerName<'static>,
    connector: TlsConnector,
}

impl<S> TlsConnect<S> for RustlsHandshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let stream = self.connector.connect(self.name, stream).await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// A TLS connection to the database.
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    /// No channel binding: SCRAM still authenticates both sides' knowledge of the password,
    /// and the certificate check binds the connection to the server's name.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
