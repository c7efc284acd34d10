//! TLS: an emulator with a throwaway CA's certificate is refused while certificates are
//! verified, trusted with the CA as `ca_file`, and accepted with verification off.

use publish_opal::{OpalClient, OpalError};

use crate::{Env, TABLES, request};

#[tokio::test]
async fn self_signed_opal() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, ca_pem) = opal_emulator::throwaway_tls(dir.path()).unwrap();
    let env = Env::start_with(|c| c.tls = Some(identity)).await;
    assert!(env.emu.url().starts_with("https://"));

    let verifying = OpalClient::new(env.settings()).unwrap();
    let err = verifying.check().await.unwrap_err();
    match &err {
        OpalError::Unreachable { step, detail } => {
            assert_eq!(step, "signing in to Opal as `administrator`");
            assert!(detail.contains("certificate"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(env.emu.journal().is_empty(), "no request got through");

    let ca_file = dir.path().join("opal-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let mut settings = env.settings();
    settings.ca_file = Some(ca_file);
    let trusting = OpalClient::new(settings).unwrap();
    trusting.check().await.unwrap();
    assert_eq!(trusting.publish(&request(TABLES)).await.unwrap().len(), 2);

    let mut settings = env.settings();
    settings.verify_tls = false;
    let careless = OpalClient::new(settings).unwrap();
    careless.check().await.unwrap();
    assert_eq!(careless.publish(&request(TABLES)).await.unwrap().len(), 2);

    // A file that holds no certificate is refused when the client is built.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let mut settings = env.settings();
    settings.ca_file = Some(empty);
    let err = OpalClient::new(settings).unwrap_err();
    assert!(matches!(err, OpalError::InvalidSettings { .. }), "{err:?}");
}
