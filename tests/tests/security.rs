//! Authentication, roles, the actor, TLS and mutual TLS.

use std::time::Duration;

use eligibility_client::{
    Change, Client, EntryChange, Error, ListMode, NewList, Point, Revision, TlsOptions, WriteOptions,
};
use eligibility_e2e::{TestServer, cc, eventually, list};
use eligibility_server::{
    identity::{AuthConfig, hash_token},
    server::{Config, TlsFiles},
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

const READER: &str = "reader-token-0123456789";
const WRITER: &str = "writer-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

fn tokens_file(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("tokens.toml");
    let text = format!(
        "[[token]]\nprincipal = \"rita\"\nrole = \"reader\"\nsha256 = \"{}\"\n\n[[token]]\nprincipal = \"will\"\nrole = \"writer\"\nsha256 = \"{}\"\n\n[[token]]\nprincipal = \"ada\"\nrole = \"admin\"\nsha256 = \"{}\"\n{extra}",
        hash_token(READER),
        hash_token(WRITER),
        hash_token(ADMIN)
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn as_(server: &TestServer, token: Option<&str>) -> Client {
    let mut b = Client::builder(server.url());
    if let Some(t) = token {
        b = b.with_bearer_token(t);
    }
    b.connect().await.unwrap()
}

fn new_list(id: &str) -> NewList {
    NewList::new(list(id), ListMode::Allowlist)
}

#[tokio::test]
async fn each_role_is_allowed_and_refused_what_it_should_be() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens_file(dir.path(), "");
    let config = Config {
        data_dir: dir.path().join("data"),
        demo: true,
        auth: AuthConfig { tokens_file: Some(tokens), require_auth_for_reads: false },
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let head = server.registry.snapshot().revision();
    let (anon, bad, reader, writer, admin) = (
        as_(&server, None).await,
        as_(&server, Some("not-a-token")).await,
        as_(&server, Some(READER)).await,
        as_(&server, Some(WRITER)).await,
        as_(&server, Some(ADMIN)).await,
    );
    let cyber = list("cyber");
    let change = [EntryChange::add(&cyber, cc("MX"))];

    // Reads are open by default; a bad token is refused even for reads.
    assert!(anon.check(&cyber, cc("FR")).await.is_ok());
    assert!(reader.check(&cyber, cc("FR")).await.is_ok());
    assert!(matches!(bad.check(&cyber, cc("FR")).await, Err(Error::Unauthenticated(_))));

    // Writes: none for anonymous, bad token, reader.
    for (who, c) in [("anonymous", &anon), ("bad token", &bad)] {
        let e = c.apply(&change, None, &WriteOptions::reason("x")).await.unwrap_err();
        assert!(matches!(e, Error::Unauthenticated(_)), "{who}: {e:?}");
    }
    let e = reader.apply(&change, None, &WriteOptions::reason("x")).await.unwrap_err();
    assert!(
        matches!(e, Error::PermissionDenied(ref m) if m.contains("rita has role reader") && m.contains("writer")),
        "{e:?}"
    );
    let e = writer.create_list(&new_list("x"), &WriteOptions::reason("x")).await.unwrap_err();
    assert!(matches!(e, Error::PermissionDenied(ref m) if m.contains("admin")), "{e:?}");
    let e = anon.create_list(&new_list("x"), &WriteOptions::reason("x")).await.unwrap_err();
    assert!(matches!(e, Error::Unauthenticated(_)), "{e:?}");
    assert_eq!(server.registry.snapshot().revision(), head, "nothing written by refused calls");

    // A writer writes, as itself; it cannot claim another actor.
    let e = writer.apply(&change, None, &WriteOptions::reason("x").with_actor("someone-else")).await.unwrap_err();
    assert!(matches!(e, Error::PermissionDenied(ref m) if m.contains("someone-else")), "{e:?}");
    let w = writer.apply(&change, None, &WriteOptions::reason("reinstated")).await.unwrap();
    assert_eq!(w.changeset.unwrap().actor, "will");
    let w = writer
        .apply(&[EntryChange::remove(&cyber, cc("MX"))], None, &WriteOptions::reason("again").with_actor("will"))
        .await
        .unwrap();
    assert_eq!(w.changeset.unwrap().actor, "will");
    // An admin creates lists; the actor is the admin.
    let w = admin.create_list(&new_list("embargo"), &WriteOptions::reason("new")).await.unwrap();
    assert_eq!(w.changeset.as_ref().unwrap().actor, "ada");
    assert!(matches!(w.changeset.unwrap().changes[0], Change::ListCreated(_)));
    let history = reader.history(&cyber, Some(cc("MX")), None).await.unwrap().changesets;
    assert_eq!(history.last().unwrap().actor, "will");
    assert!(admin.apply(&change, None, &WriteOptions::reason("admin writes too")).await.is_ok());
}

#[tokio::test]
async fn reads_can_require_a_token_and_health_stays_open_and_tokens_reload() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens_file(dir.path(), "");
    let config = Config {
        data_dir: dir.path().join("data"),
        demo: true,
        auth: AuthConfig { tokens_file: Some(tokens.clone()), require_auth_for_reads: true },
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let anon = as_(&server, None).await;
    let e = anon.check(&list("cyber"), cc("FR")).await.unwrap_err();
    assert!(matches!(e, Error::Unauthenticated(ref m) if m.contains("missing bearer token")), "{e:?}");
    let channel = tonic::transport::Endpoint::from_shared(server.url()).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    assert!(health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.is_ok());

    // A token added to the file is accepted once the file is reloaded.
    let late = "late-token-0123456789";
    tokens_file(
        dir.path(),
        &format!("\n[[token]]\nprincipal = \"lee\"\nrole = \"reader\"\nsha256 = \"{}\"\n", hash_token(late)),
    );
    let lee = as_(&server, Some(late)).await;
    eventually(Duration::from_secs(6), "the new token to be picked up", || async {
        lee.check(&list("cyber"), cc("FR")).await.ok()
    })
    .await;
    // A broken file is refused; the previous tokens stay in force.
    std::fs::write(&tokens, "this is not toml [[[").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(lee.check(&list("cyber"), cc("FR")).await.is_ok());
}

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    stranger_cert: String,
    stranger_key: String,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, cn: &str, issuer: &Issuer<'_, KeyPair>| {
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into()], "localhost", &issuer);
    let (client_cert, client_key) = leaf(vec![], "deal-desk", &issuer);
    // Signed by another CA: must be refused.
    let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other_key = KeyPair::generate().unwrap();
    let other_issuer = Issuer::new(other, other_key);
    let (stranger_cert, stranger_key) = leaf(vec![], "deal-desk", &other_issuer);
    Pki { ca_pem: ca_cert.pem(), server_cert, server_key, client_cert, client_key, stranger_cert, stranger_key }
}

fn write_pki(dir: &std::path::Path, p: &Pki) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let (cert, key, ca) = (dir.join("server.pem"), dir.join("server.key"), dir.join("ca.pem"));
    std::fs::write(&cert, &p.server_cert).unwrap();
    std::fs::write(&key, &p.server_key).unwrap();
    std::fs::write(&ca, &p.ca_pem).unwrap();
    (cert, key, ca)
}

#[tokio::test]
async fn tls_end_to_end_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki();
    let (cert, key, _) = write_pki(dir.path(), &p);
    let config = Config {
        data_dir: dir.path().join("data"),
        demo: true,
        tls: Some(TlsFiles { cert, key, client_ca: None }),
        auth: AuthConfig { tokens_file: Some(tokens_file(dir.path(), "")), require_auth_for_reads: false },
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let tls = TlsOptions::trusting(p.ca_pem.clone().into_bytes());
    let c = Client::builder(url.clone()).with_tls(tls.clone()).with_bearer_token(WRITER).connect().await.unwrap();
    let a = c.check(&list("cyber"), cc("MX")).await.unwrap();
    assert!(!a.decision.eligible);
    let w =
        c.apply(&[EntryChange::add(&list("cyber"), cc("MX"))], None, &WriteOptions::reason("over TLS")).await.unwrap();
    assert_eq!(w.changeset.unwrap().actor, "will");
    // Plaintext to a TLS port fails; TLS without trusting the CA fails.
    let plain = Client::builder(format!("http://127.0.0.1:{}", server.addr.port()))
        .with_timeout(Duration::from_secs(2))
        .with_retry(eligibility_client::RetryPolicy::none())
        .connect_lazy()
        .unwrap();
    assert!(plain.check(&list("cyber"), cc("MX")).await.is_err());
    let untrusted = Client::builder(url)
        .with_tls(TlsOptions::default())
        .with_retry(eligibility_client::RetryPolicy::none())
        .connect()
        .await;
    let failed = match untrusted {
        Err(_) => true,
        Ok(c) => c.check(&list("cyber"), cc("MX")).await.is_err(),
    };
    assert!(failed, "a client that does not trust the CA must not get through");
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_and_its_name_is_the_principal() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki();
    let (cert, key, ca) = write_pki(dir.path(), &p);
    let tokens = tokens_file(dir.path(), "\n[[client]]\ncommon_name = \"deal-desk\"\nrole = \"writer\"\n");
    let config = Config {
        data_dir: dir.path().join("data"),
        demo: true,
        tls: Some(TlsFiles { cert, key, client_ca: Some(ca) }),
        auth: AuthConfig { tokens_file: Some(tokens), require_auth_for_reads: true },
        ..Config::default()
    };
    let server = TestServer::start_with(config).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let opts = |identity: Option<(String, String)>| match identity {
        Some((c, k)) => TlsOptions::trusting(p.ca_pem.clone()).with_identity(c, k),
        None => TlsOptions::trusting(p.ca_pem.clone()),
    };
    // No client certificate: refused at the handshake (or the first call).
    let no_cert = Client::builder(url.clone())
        .with_tls(opts(None))
        .with_retry(eligibility_client::RetryPolicy::none())
        .connect()
        .await;
    let refused = match no_cert {
        Err(_) => true,
        Ok(c) => c.check(&list("cyber"), cc("MX")).await.is_err(),
    };
    assert!(refused, "mTLS must refuse a client without a certificate");
    // A certificate from another CA: refused.
    let stranger = Client::builder(url.clone())
        .with_tls(opts(Some((p.stranger_cert.clone(), p.stranger_key.clone()))))
        .with_retry(eligibility_client::RetryPolicy::none())
        .connect()
        .await;
    let refused = match stranger {
        Err(_) => true,
        Ok(c) => c.check(&list("cyber"), cc("MX")).await.is_err(),
    };
    assert!(refused, "a certificate from another CA must be refused");
    // The right certificate: its common name is the principal.
    let c = Client::builder(url)
        .with_tls(opts(Some((p.client_cert.clone(), p.client_key.clone()))))
        .connect()
        .await
        .unwrap();
    assert!(c.check_at(&list("cyber"), cc("MX"), Point::latest().at_revision(Revision(3))).await.is_ok());
    let w =
        c.apply(&[EntryChange::add(&list("cyber"), cc("MX"))], None, &WriteOptions::reason("via mTLS")).await.unwrap();
    assert_eq!(w.changeset.unwrap().actor, "deal-desk");
}
