//! Authentication and roles: who a caller is, from its token or client
//! certificate, and whether its role is enough. Which method needs which
//! role is the route table's (`routes`, enforced by `layers::auth`);
//! handlers never check.
//!
//! Callers present a bearer token (`authorization: Bearer <token>`) or,
//! with mutual TLS, a client certificate. The tokens file maps the SHA-256
//! of each token (never the token itself) to a principal and a role, and
//! certificate common names to a role:
//!
//! ```toml
//! [[token]]
//! principal = "alice"
//! role = "writer"          # reader | writer | admin
//! sha256 = "<hex of sha256(token)>"
//!
//! [[client]]
//! common_name = "deal-desk.example"   # from the client certificate
//! role = "reader"
//! ```
//!
//! Roles nest: `admin` may do what `writer` may, `writer` what `reader`
//! may. Reads need `reader` only when reads are configured to require it;
//! writes need `writer`; list creation and metadata need `admin`. The
//! authenticated principal becomes the changeset's actor. The file is
//! reloaded on SIGHUP and when it changes; a file that does not parse is
//! refused with a log line and the previous one stays in force.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use arc_swap::ArcSwap;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::lifecycle::Shutdown;

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads.
    Reader,
    /// Reads and entry changes.
    Writer,
    /// Everything, including list creation and metadata.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        })
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Its name (recorded as the actor of its writes).
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// Why a caller was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or unknown ones.
    #[error("{0}")]
    Unauthenticated(String),
    /// Known, but the role is not enough.
    #[error("{0}")]
    PermissionDenied(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
    #[serde(default)]
    client: Vec<ClientEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    principal: String,
    role: Role,
    sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEntry {
    common_name: String,
    role: Role,
}

/// A tokens file that cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TokensFileError {
    /// What is wrong, naming the file, entry and field.
    pub message: String,
}

impl From<String> for TokensFileError {
    fn from(message: String) -> Self {
        TokensFileError { message }
    }
}

/// The parsed tokens file.
#[derive(Debug, Default)]
pub struct Table {
    tokens: HashMap<[u8; 32], Principal>,
    clients: HashMap<String, Role>,
}

impl Table {
    /// Parses a tokens file's text; errors name the entry and field.
    pub fn parse(text: &str) -> Result<Table, TokensFileError> {
        let f: TokensFile = toml::from_str(text).map_err(|e| e.to_string())?;
        Self::from_file(f).map_err(TokensFileError::from)
    }

    fn from_file(f: TokensFile) -> Result<Table, String> {
        let mut table = Table::default();
        for (i, t) in f.token.into_iter().enumerate() {
            let bytes = hex::decode(t.sha256.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| format!("token[{i}].sha256 {:?} is not 64 hex digits (a SHA-256)", t.sha256))?;
            if t.principal.trim().is_empty() {
                return Err(format!("token[{i}].principal is empty"));
            }
            if table.tokens.insert(bytes, Principal { name: t.principal, role: t.role }).is_some() {
                return Err(format!("token[{i}].sha256 appears twice"));
            }
        }
        for c in f.client {
            table.clients.insert(c.common_name, c.role);
        }
        Ok(table)
    }
}

/// The SHA-256 of a token, hex: what the tokens file stores.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token (256 bits from the OS, hex).
pub fn new_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Auth settings.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// The tokens file; `None` = no authentication (development only).
    pub tokens_file: Option<PathBuf>,
    /// Whether reads require at least `reader`.
    pub require_auth_for_reads: bool,
}

/// Decides who a caller is and what it may do.
pub struct Authenticator {
    config: AuthConfig,
    table: ArcSwap<Table>,
    loaded: std::sync::Mutex<Option<SystemTime>>,
}

impl Authenticator {
    /// Loads the tokens file (if any); an unreadable or invalid file is an
    /// error at start.
    pub fn new(config: AuthConfig) -> Result<Arc<Self>, TokensFileError> {
        let a = Authenticator { config, table: ArcSwap::from_pointee(Table::default()), loaded: Default::default() };
        if let Some(path) = &a.config.tokens_file {
            let table = load(path)?;
            tracing::info!(file = %path.display(), tokens = table.tokens.len(), clients = table.clients.len(), "tokens loaded");
            a.table.store(Arc::new(table));
            *a.loaded.lock().unwrap_or_else(|p| p.into_inner()) = mtime(path);
        }
        Ok(Arc::new(a))
    }

    /// Whether authentication is on.
    pub fn enabled(&self) -> bool {
        self.config.tokens_file.is_some()
    }

    /// Re-reads the tokens file; keeps the old table if the new one is bad.
    pub fn reload(&self) {
        let Some(path) = &self.config.tokens_file else { return };
        match load(path) {
            Ok(t) => {
                tracing::info!(file = %path.display(), tokens = t.tokens.len(), "tokens reloaded");
                self.table.store(Arc::new(t));
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "tokens file not reloaded; the previous one stays in force")
            }
        }
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = mtime(path);
    }

    /// Reloads on SIGHUP and when the file's modification time changes
    /// (checked every `poll`), until `shutdown`.
    pub async fn watch_file(self: Arc<Self>, poll: Duration, shutdown: Shutdown) {
        let Some(path) = self.config.tokens_file.clone() else { return };
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup_recv = std::future::pending::<()>();
            tokio::select! {
                _ = shutdown.triggered() => return,
                _ = hup_recv => self.reload(),
                _ = tokio::time::sleep(poll) => {
                    let changed = mtime(&path) != *self.loaded.lock().unwrap_or_else(|p| p.into_inner());
                    if changed {
                        self.reload();
                    }
                }
            }
        }
    }

    /// Authenticates a call and checks it has `needed`. `bearer` is the
    /// token from the `authorization` header (if any), `cert_cn` the common
    /// name of a verified client certificate (if any). Returns the
    /// principal (None when authentication is off, or for an anonymous read
    /// that is allowed).
    pub fn authorize(
        &self,
        bearer: Option<&str>,
        cert_cn: Option<&str>,
        needed: Role,
        what: &str,
    ) -> Result<Option<Principal>, AuthError> {
        if !self.enabled() {
            return Ok(None);
        }
        let table = self.table.load();
        let principal = if let Some(token) = bearer {
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            match table.tokens.get(&digest) {
                Some(p) => Some(p.clone()),
                None => return Err(AuthError::Unauthenticated("the bearer token is not valid".into())),
            }
        } else if let Some(cn) = cert_cn {
            table.clients.get(cn).map(|role| Principal { name: cn.to_owned(), role: *role })
        } else {
            None
        };
        match principal {
            Some(p) if p.role >= needed => Ok(Some(p)),
            Some(p) => {
                Err(AuthError::PermissionDenied(format!("{} has role {}; {what} needs {needed}", p.name, p.role)))
            }
            None if needed == Role::Reader && !self.config.require_auth_for_reads => Ok(None),
            None => Err(AuthError::Unauthenticated(match cert_cn {
                Some(cn) => format!(
                    "client certificate {cn:?} is not in the tokens file, and no bearer token was sent; {what} needs {needed}"
                ),
                None => format!("missing bearer token (authorization: Bearer <token>); {what} needs {needed}"),
            })),
        }
    }
}

fn load(path: &Path) -> Result<Table, TokensFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Table::parse(&text).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The common name of a DER certificate's subject.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(text: &str, reads: bool) -> Authenticator {
        Authenticator {
            config: AuthConfig { tokens_file: Some("x".into()), require_auth_for_reads: reads },
            table: ArcSwap::from_pointee(Table::parse(text).unwrap()),
            loaded: Default::default(),
        }
    }

    #[test]
    fn roles_nest_and_errors_say_why() {
        let text = format!(
            "[[token]]\nprincipal = \"rita\"\nrole = \"reader\"\nsha256 = \"{}\"\n[[token]]\nprincipal = \"will\"\nrole = \"writer\"\nsha256 = \"{}\"\n",
            hash_token("r-token"),
            hash_token("w-token")
        );
        let a = auth(&text, false);
        assert_eq!(a.authorize(Some("w-token"), None, Role::Writer, "Apply").unwrap().unwrap().name, "will");
        assert!(a.authorize(Some("w-token"), None, Role::Reader, "Check").is_ok());
        let e = a.authorize(Some("r-token"), None, Role::Writer, "Apply").unwrap_err();
        assert_eq!(e, AuthError::PermissionDenied("rita has role reader; Apply needs writer".into()));
        let e = a.authorize(Some("w-token"), None, Role::Admin, "CreateList").unwrap_err();
        assert!(matches!(e, AuthError::PermissionDenied(_)));
        assert!(matches!(a.authorize(Some("nope"), None, Role::Reader, "Check"), Err(AuthError::Unauthenticated(_))));
        assert_eq!(a.authorize(None, None, Role::Reader, "Check"), Ok(None), "open reads");
        assert!(matches!(a.authorize(None, None, Role::Writer, "Apply"), Err(AuthError::Unauthenticated(_))));
        let closed = auth(&text, true);
        assert!(matches!(closed.authorize(None, None, Role::Reader, "Check"), Err(AuthError::Unauthenticated(_))));
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        assert!(
            Table::parse("[[token]]\nprincipal = \"a\"\nrole = \"root\"\nsha256 = \"00\"")
                .unwrap_err()
                .to_string()
                .contains("root")
        );
        assert!(
            Table::parse("[[token]]\nprincipal = \"a\"\nrole = \"reader\"\nsha256 = \"zz\"")
                .unwrap_err()
                .to_string()
                .contains("token[0].sha256")
        );
        assert!(Table::parse("[[tokens]]\n").unwrap_err().to_string().contains("tokens"));
    }

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(new_token().len(), 64);
    }
}
