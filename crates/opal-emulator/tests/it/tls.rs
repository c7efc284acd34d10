//! HTTPS: a client that verifies certificates refuses the emulator's throwaway one, trusts it
//! with the CA, and accepts it with verification off.

use reqwest::StatusCode;

use crate::{ADMIN, ADMIN_PASSWORD, Env, tls_identity};

#[tokio::test]
async fn https_with_a_throwaway_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, ca_pem) = tls_identity(dir.path());
    let env = Env::start_with(|c| c.tls = Some(identity)).await;
    let url = env.url("/system/subject-profile/_current");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let verifying = reqwest::Client::new();
    let err = verifying
        .get(&url)
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let trusting = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let reply = trusting
        .get(&url)
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);

    let careless = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let reply = careless
        .get(&url)
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);

    // Plain HTTP to the HTTPS port gets no answer.
    let plain = url.replacen("https://", "http://", 1);
    assert!(reqwest::Client::new().get(plain).send().await.is_err());
    // Only the successful handshakes reached the API.
    assert_eq!(env.emu.journal().len(), 2);
}

#[tokio::test]
async fn a_bad_identity_is_refused_at_start() {
    let err = opal_emulator::OpalEmulator::start({
        let mut c = opal_emulator::OpalEmulatorConfig::new("x");
        c.tls = Some(opal_emulator::TlsIdentity {
            cert_pem: "not a certificate".into(),
            key_pem: "not a key".into(),
        });
        c
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
}
