//! A throwaway certificate authority and server certificate for HTTPS tests, made with the
//! `openssl` command (present wherever the SQL test rig runs).

use std::path::Path;
use std::process::Command;

use crate::{Error, TlsIdentity};

/// Writes a CA and a server certificate for `127.0.0.1` and `localhost` signed by it into
/// `dir` (valid two days), and answers the server's identity and the CA certificate (PEM): a
/// client trusts the emulator only if it is given that CA.
pub fn throwaway_tls(dir: &Path) -> Result<(TlsIdentity, String), Error> {
    let tls = |message: String| Error::Tls { message };
    let run = |command: &str| -> Result<(), Error> {
        let args: Vec<&str> = command.split_whitespace().collect();
        let out = Command::new("openssl")
            .args(&args)
            .current_dir(dir)
            .output()
            .map_err(|e| tls(format!("cannot run the openssl command: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(tls(format!(
                "openssl {}: {}",
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    };
    run(
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=opal-emulator-test-CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
         -keyout ca.key -out ca.pem",
    )?;
    run("req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr")?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| tls(format!("cannot write server.ext: {e}")))?;
    run(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
         -extfile server.ext -out server.pem",
    )?;
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| tls(format!("cannot read {name}: {e}")))
    };
    Ok((
        TlsIdentity {
            cert_pem: read("server.pem")?,
            key_pem: read("server.key")?,
        },
        read("ca.pem")?,
    ))
}
