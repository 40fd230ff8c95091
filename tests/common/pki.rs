//! Certificates made at test time with the `openssl` command: a CA, a
//! server certificate for 127.0.0.1/localhost, a client certificate, and
//! look-alikes that must be refused (another CA, a certificate for another
//! host, a client certificate from another CA).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory of PEM files; see the file names in [`Pki::generate`].
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Generates (EC P-256 keys: fast):
    /// `ca.crt`; `server.crt/key` (SAN 127.0.0.1, localhost) and
    /// `elsewhere.crt/key` (SAN elsewhere.example), both signed by the CA;
    /// `client.crt/key` (CN `alice`) signed by the CA; `rogue-ca.crt` and
    /// `rogue-client.crt/key` (CN `alice`) signed by the rogue CA;
    /// `selfsigned.crt/key`, a server certificate that is its own CA.
    pub fn generate() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().expect("pki temp dir"),
        };
        pki.self_signed("ca", "mqttapp test CA");
        pki.self_signed("rogue-ca", "rogue CA");
        pki.self_signed("selfsigned", "localhost");
        pki.issued(
            "server",
            "localhost",
            "ca",
            Some("IP:127.0.0.1,DNS:localhost"),
        );
        pki.issued(
            "elsewhere",
            "elsewhere.example",
            "ca",
            Some("DNS:elsewhere.example"),
        );
        pki.issued("client", "alice", "ca", None);
        pki.issued("rogue-client", "alice", "rogue-ca", None);
        pki
    }

    /// The path of one of the files, e.g. `ca.crt`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The path as a string, for command-line arguments.
    pub fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// A Mosquitto TLS listener section for [`super::Broker::start_with`],
    /// serving certificate `server` (`server`, `elsewhere` or `selfsigned`). With
    /// `require_client_cert`, clients must show a certificate from our CA
    /// and its CN becomes their user name (no anonymous access).
    pub fn listener(&self, server: &str, require_client_cert: bool) -> String {
        let mut conf = format!(
            "listener {{port}} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
            self.arg("ca.crt"),
            self.arg(&format!("{server}.crt")),
            self.arg(&format!("{server}.key")),
        );
        if require_client_cert {
            conf.push_str(
                "require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n",
            );
        } else {
            conf.push_str("allow_anonymous true\n");
        }
        conf
    }

    /// A fresh P-256 key in `<name>.key`; returns that file name.
    fn new_key(&self, name: &str) -> String {
        let key = format!("{name}.key");
        openssl(
            self.dir.path(),
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &key,
            ],
        );
        key
    }

    fn self_signed(&self, name: &str, cn: &str) {
        let key = self.new_key(name);
        openssl(
            self.dir.path(),
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &key,
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
    }

    fn issued(&self, name: &str, cn: &str, ca: &str, san: Option<&str>) {
        let key = self.new_key(name);
        let csr = format!("{name}.csr");
        openssl(
            self.dir.path(),
            &[
                "req",
                "-new",
                "-key",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        let ext = format!("{name}.ext");
        let mut extensions = String::from("basicConstraints=CA:FALSE\n");
        if let Some(san) = san {
            extensions.push_str(&format!("subjectAltName={san}\n"));
        }
        std::fs::write(self.dir.path().join(&ext), extensions).expect("write extensions");
        openssl(
            self.dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is installed by `make setup` (package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
