//! TLS: paho's SSL options from our settings, and a diagnosis of a failed
//! handshake.
//!
//! paho C reports every failed TLS connection as "TCP/TLS connect
//! failure", whatever the cause. When that happens, [`explain`] repeats
//! the handshake with OpenSSL directly (the same library paho uses, with
//! the same trust settings and host-name check) to say what went wrong:
//! a CA that did not sign the broker's certificate, a certificate issued
//! for another host, a client certificate the broker wants or refuses.

use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssl::ssl::{HandshakeError, Ssl, SslContext, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::X509VerifyResult;
use paho_mqtt as paho;

use super::{BrokerUri, MqttError};
use crate::config::{Connection, Tls};

/// The hint when nothing more precise is known.
pub(super) const GENERIC_HINT: &str =
    "check --ca-file, the certificate's host name, and --cert-file/--key-file";

/// How long the diagnosis may wait for the network.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for a late alert after a handshake that looked fine
/// (TLS 1.3 servers refuse a missing client certificate only then).
const ALERT_WAIT: Duration = Duration::from_millis(500);

/// X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
const HOST_MISMATCH: [i32; 2] = [62, 64];

/// The system's CA certificates, trusted when no `--ca-file` is given.
///
/// OpenSSL is compiled into the binary (a one-shot `ask` does not pay for
/// loading the shared libraries), so its built-in default location
/// (`/usr/local/ssl`) is not where distributions keep the certificates.
/// They are found the way OpenSSL-based tools find them: `SSL_CERT_FILE`
/// and `SSL_CERT_DIR` first, then the usual places (Debian's
/// `/etc/ssl/certs/ca-certificates.crt`, Fedora's bundle, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SystemTrust {
    /// A bundle of CA certificates in one PEM file.
    pub file: Option<PathBuf>,
    /// A directory of hashed CA certificates.
    pub dir: Option<PathBuf>,
}

impl SystemTrust {
    /// Looks for the certificates (a few `stat` calls).
    pub fn find() -> SystemTrust {
        let found = openssl_probe::probe();
        let trust = SystemTrust {
            file: found.cert_file,
            dir: found.cert_dir.into_iter().next(),
        };
        if trust.file.is_none() && trust.dir.is_none() {
            tracing::warn!(
                "no system CA certificates found (set SSL_CERT_FILE, install ca-certificates, \
                 or pass --ca-file): no broker certificate can be verified"
            );
        }
        trust
    }
}

/// paho's SSL options: server certificate and host name verified unless
/// `insecure`, which is logged as a warning every time it is used.
pub(super) fn ssl_options(tls: &Tls) -> Result<paho::SslOptions, MqttError> {
    let mut b = paho::SslOptionsBuilder::new();
    let file_err = |path: &Path| {
        let path = path.display().to_string();
        move |e: paho::Error| MqttError::TlsFile {
            path,
            reason: e.to_string(),
        }
    };
    for path in [&tls.ca_file, &tls.cert_file, &tls.key_file]
        .into_iter()
        .flatten()
    {
        if !path.is_file() {
            return Err(MqttError::TlsFile {
                path: path.display().to_string(),
                reason: "no such file".into(),
            });
        }
    }
    match &tls.ca_file {
        Some(ca) => {
            b.trust_store(ca).map_err(file_err(ca))?;
        }
        None => {
            let trust = SystemTrust::find();
            if let Some(file) = &trust.file {
                b.trust_store(file).map_err(file_err(file))?;
            }
            if let Some(dir) = &trust.dir {
                b.ca_path(dir).map_err(file_err(dir))?;
            }
        }
    }
    if let Some(cert) = &tls.cert_file {
        b.key_store(cert).map_err(file_err(cert))?;
    }
    if let Some(key) = &tls.key_file {
        b.private_key(key).map_err(file_err(key))?;
    }
    if tls.insecure {
        tracing::warn!(
            "INSECURE: TLS certificate and host-name verification are OFF (--insecure); \
             anyone on the network path can read and change this connection, passwords included. \
             Use --ca-file instead outside of tests"
        );
    }
    // enable_server_cert_auth: verify the chain; verify: check the host name.
    b.enable_server_cert_auth(!tls.insecure)
        .verify(!tls.insecure);
    Ok(b.finalize())
}

/// Replaces the generic reason and hint of a [`MqttError::Tls`] with what
/// a handshake made with OpenSSL directly tells; other errors pass through.
pub fn explain(err: MqttError, conn: &Connection, uri: &BrokerUri) -> MqttError {
    let MqttError::Tls {
        uri: shown,
        reason,
        hint,
    } = err
    else {
        return err;
    };
    let (reason, hint) = diagnose(uri, &conn.tls).unwrap_or((reason, hint));
    MqttError::Tls {
        uri: shown,
        reason,
        hint,
    }
}

/// A reason and a hint, or `None` when the handshake works from here.
fn diagnose(uri: &BrokerUri, tls: &Tls) -> Option<(String, String)> {
    let (host, _) = uri.host_port.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ssl = match client_ssl(host, tls) {
        Ok(ssl) => ssl,
        Err(e) => return Some(local_problem(tls, &e)),
    };
    let addr = uri.host_port.to_socket_addrs().ok()?.next()?;
    let tcp = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).ok()?;
    tcp.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    tcp.set_write_timeout(Some(PROBE_TIMEOUT)).ok()?;
    match ssl.connect(tcp) {
        Ok(mut stream) => {
            // The handshake worked; a TLS 1.3 server may still refuse our
            // certificate (or its absence) with an alert right after.
            stream.get_ref().set_read_timeout(Some(ALERT_WAIT)).ok()?;
            let mut byte = [0u8; 1];
            match stream.ssl_read(&mut byte) {
                Err(e) => alert(tls, e.ssl_error()),
                Ok(_) => None,
            }
        }
        Err(HandshakeError::Failure(mid)) => {
            let verify = mid.ssl().verify_result();
            if verify != X509VerifyResult::OK {
                return Some(untrusted(host, verify));
            }
            alert(tls, mid.error().ssl_error())
        }
        Err(_) => None,
    }
}

/// An `Ssl` set up the way paho sets up its connection.
fn client_ssl(host: &str, tls: &Tls) -> Result<Ssl, openssl::error::ErrorStack> {
    let mut ctx = SslContext::builder(SslMethod::tls_client())?;
    if tls.insecure {
        ctx.set_verify(SslVerifyMode::NONE);
    } else {
        ctx.set_verify(SslVerifyMode::PEER);
    }
    match &tls.ca_file {
        Some(ca) => ctx.set_ca_file(ca)?,
        None => {
            let trust = SystemTrust::find();
            ctx.load_verify_locations(trust.file.as_deref(), trust.dir.as_deref())?;
        }
    }
    if let Some(cert) = &tls.cert_file {
        ctx.set_certificate_chain_file(cert)?;
    }
    if let Some(key) = &tls.key_file {
        ctx.set_private_key_file(key, SslFiletype::PEM)?;
        ctx.check_private_key()?;
    }
    let mut ssl = Ssl::new(&ctx.build())?;
    if !tls.insecure {
        match host.parse::<IpAddr>() {
            Ok(ip) => ssl.param_mut().set_ip(ip)?,
            Err(_) => {
                ssl.set_hostname(host)?;
                ssl.param_mut().set_host(host)?;
            }
        }
    }
    Ok(ssl)
}

/// One of our own TLS files cannot be used.
fn local_problem(tls: &Tls, e: &openssl::error::ErrorStack) -> (String, String) {
    let reason = first_reason(Some(e)).unwrap_or_else(|| e.to_string());
    let files: Vec<String> = [&tls.ca_file, &tls.cert_file, &tls.key_file]
        .into_iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect();
    (
        format!("cannot use the TLS files ({reason})"),
        format!(
            "check that {} are PEM files and that the key belongs to the certificate",
            files.join(", ")
        ),
    )
}

/// The broker's certificate was not accepted.
fn untrusted(host: &str, verify: X509VerifyResult) -> (String, String) {
    let reason = format!(
        "the broker's certificate is not trusted: {}",
        verify.error_string()
    );
    let hint = if HOST_MISMATCH.contains(&verify.as_raw()) {
        format!("the certificate is not issued for {host:?}: connect with a name it lists")
    } else {
        "give --ca-file with the CA that signed the broker's certificate \
         (for a throw-away test broker only: --insecure)"
            .to_string()
    };
    (reason, hint)
}

/// The broker ended the handshake with an alert.
fn alert(tls: &Tls, e: Option<&openssl::error::ErrorStack>) -> Option<(String, String)> {
    let reason = first_reason(e)?;
    let hint = if tls.cert_file.is_none() {
        "the broker may require a client certificate: give --cert-file and --key-file"
    } else if reason.contains("certificate") || reason.contains("unknown ca") {
        "the broker refused the client certificate (--cert-file): is it signed by a CA the broker trusts?"
    } else {
        GENERIC_HINT
    };
    Some((
        format!("the broker ended the handshake: {reason}"),
        hint.to_string(),
    ))
}

fn first_reason(e: Option<&openssl::error::ErrorStack>) -> Option<String> {
    e?.errors()
        .iter()
        .find_map(|e| e.reason())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tls_files_are_named_before_connecting() {
        let tls = Tls {
            ca_file: Some("/nonexistent/ca.crt".into()),
            ..Tls::default()
        };
        let err = ssl_options(&tls).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(
            err.starts_with("cannot use TLS file /nonexistent/ca.crt: no such file"),
            "{err}"
        );
    }
}
