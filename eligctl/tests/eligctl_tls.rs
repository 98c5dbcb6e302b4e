//! `eligctl` against a TLS server: the system's roots for https:// URLs,
//! and each TLS failure said plainly, with what to pass, and the
//! "unavailable" exit code (4).

use std::path::Path;

use eligibility_server::server::{self, Config, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::{net::TcpListener, process::Command, sync::oneshot};

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { pem, issuer: Issuer::new(params, key) }
}

fn leaf(ca: &Ca, names: Vec<String>, cn: &str) -> (String, String) {
    let mut p = CertificateParams::new(names).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    (p.signed_by(&key, &ca.issuer).unwrap().pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A demo server with TLS (and mutual TLS when `client_ca`); its port.
async fn tls_server(dir: &Path, ca: &Ca, client_ca: bool) -> (u16, oneshot::Sender<()>) {
    let (cert, key) = leaf(ca, vec!["localhost".into()], "localhost");
    let tls = TlsFiles {
        cert: write(dir, "server.pem", &cert).into(),
        key: write(dir, "server.key", &key).into(),
        client_ca: client_ca.then(|| write(dir, "client-ca.pem", &ca.pem).into()),
    };
    let config = Config { data_dir: dir.join("data"), demo: true, tls: Some(tls), ..Config::default() };
    let app = server::open(&config).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        server::run(listener, app, &config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (port, tx)
}

async fn eligctl(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eligctl"));
    c.args(args).envs(env.iter().copied()).env_remove("ELIGIBILITY_SERVER");
    let out = c.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_uses_the_system_roots_and_tls_failures_say_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("test CA");
    let (port, _stop) = tls_server(dir.path(), &ca, false).await;
    let https = format!("https://localhost:{port}");
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);

    // No --ca-cert: the system's roots. Ours is not among them: refused,
    // saying so and what to pass.
    let (code, _, err) = eligctl(&["--server", &https, "lists"], &[]).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("not signed by a trusted CA") && err.contains("--ca-cert"), "{err}");
    // The system's roots are what the platform says they are (here: our CA,
    // by the variable rustls-native-certs reads).
    let (code, out, err) = eligctl(&["--server", &https, "lists"], &[("SSL_CERT_FILE", &ca_file)]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cyber"), "{out}");
    // A CA that did not sign the server's certificate.
    let other = write(dir.path(), "other.pem", &self::ca("other CA").pem);
    let (code, _, err) = eligctl(&["--server", &https, "--ca-cert", &other, "lists"], &[]).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("--ca-cert"), "{err}");
    // Plaintext to the TLS port.
    let (code, _, err) = eligctl(&["--server", &format!("http://localhost:{port}"), "lists"], &[]).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("https://"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_without_a_client_certificate_says_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("test CA");
    let (port, _stop) = tls_server(dir.path(), &ca, true).await;
    let https = format!("https://localhost:{port}");
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);
    let (code, _, err) = eligctl(&["--server", &https, "--ca-cert", &ca_file, "lists"], &[]).await;
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("client certificate") && err.contains("--client-cert"), "{err}");
    let (cert, key) = leaf(&ca, vec![], "deal-desk");
    let (cert, key) = (write(dir.path(), "client.pem", &cert), write(dir.path(), "client.key", &key));
    let args = ["--server", &https, "--ca-cert", &ca_file, "--client-cert", &cert, "--client-key", &key, "lists"];
    let (code, out, err) = eligctl(&args, &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cyber"), "{out}");
}
