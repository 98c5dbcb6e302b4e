//! Authentication and authorization as one tower layer, for every surface
//! on the port: the method table says which role each method needs; the
//! layer authenticates the caller, refuses what its role does not allow,
//! and puts the [`Caller`] in the request's extensions for handlers that
//! record an actor. Handlers never check roles. A method the table does
//! not name is refused, so a new method is closed until someone decides
//! who may call it.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::future::Either;

use tonic::{Status, transport::server::TlsConnectInfo};

use crate::auth::{AuthError, Authenticator, Principal, Role};

/// Who may call a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, authenticated or not (health checks, reflection).
    Public,
    /// Callers with at least this role (reads with `reader` are open to
    /// anonymous callers unless reads require authentication).
    Role(Role),
    /// A console page: authenticated as a read, but a caller who must
    /// sign in first is handed on with [`SignIn`] (the page asks for a
    /// token) instead of refused; a wrong token is still refused.
    Page,
}

/// Every method served, with who may call it.
pub const METHODS: &[(&str, Access)] = &[
    ("/eligibility.v1.EligibilityService/Check", Access::Role(Role::Reader)),
    ("/eligibility.v1.EligibilityService/BatchCheck", Access::Role(Role::Reader)),
    ("/eligibility.v1.EligibilityService/ListEntries", Access::Role(Role::Reader)),
    ("/eligibility.v1.EligibilityService/ListLists", Access::Role(Role::Reader)),
    ("/eligibility.v1.EligibilityService/GetList", Access::Role(Role::Reader)),
    ("/eligibility.v1.EligibilityService/History", Access::Role(Role::Reader)),
    ("/eligibility.v1.EligibilityService/Diff", Access::Role(Role::Reader)),
    ("/eligibility.v1.EligibilityService/Watch", Access::Role(Role::Reader)),
    ("/eligibility.v1.AdminService/CreateList", Access::Role(Role::Admin)),
    ("/eligibility.v1.AdminService/UpdateList", Access::Role(Role::Admin)),
    ("/eligibility.v1.AdminService/Apply", Access::Role(Role::Writer)),
    ("/eligibility.v1.AdminService/ReplaceMembers", Access::Role(Role::Writer)),
    ("/grpc.health.v1.Health/Check", Access::Public),
    ("/grpc.health.v1.Health/Watch", Access::Public),
    ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", Access::Public),
    ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", Access::Public),
];

/// Every HTTP route served (method, path template with `{}` for one
/// segment), with the RPC it answers (for messages) and who may call it.
pub const HTTP_ROUTES: &[(&str, &str, &str, Access)] = &[
    ("GET", "/v1/lists", "ListLists", Access::Role(Role::Reader)),
    ("POST", "/v1/lists", "CreateList", Access::Role(Role::Admin)),
    ("GET", "/v1/lists/{}", "GetList", Access::Role(Role::Reader)),
    ("PATCH", "/v1/lists/{}", "UpdateList", Access::Role(Role::Admin)),
    ("GET", "/v1/lists/{}/entries", "ListEntries", Access::Role(Role::Reader)),
    ("GET", "/v1/lists/{}/check/{}", "Check", Access::Role(Role::Reader)),
    ("POST", "/v1/check:batch", "BatchCheck", Access::Role(Role::Reader)),
    ("GET", "/v1/lists/{}/history", "History", Access::Role(Role::Reader)),
    ("GET", "/v1/lists/{}/diff", "Diff", Access::Role(Role::Reader)),
    ("PUT", "/v1/lists/{}/members", "ReplaceMembers", Access::Role(Role::Writer)),
    ("POST", "/v1/changesets", "Apply", Access::Role(Role::Writer)),
    ("GET", "/v1/watch", "Watch", Access::Role(Role::Reader)),
    ("GET", "/v1/openapi.json", "OpenApi", Access::Public),
];

/// Every console path (GET only; path template with `{}` for one
/// segment), with who may call it.
pub const CONSOLE_ROUTES: &[(&str, Access)] = &[
    ("/", Access::Page),
    ("/lists/{}", Access::Page),
    ("/lists/{}/diff", Access::Page),
    ("/countries", Access::Page),
    ("/countries/{}", Access::Page),
    ("/history", Access::Page),
    ("/console/assets/{}", Access::Public),
];

/// The console route `path` is, if it is one.
pub(crate) fn console_route(path: &str) -> Option<Access> {
    CONSOLE_ROUTES.iter().find(|(t, _)| fits(t, path)).map(|(_, a)| *a)
}

/// Put in a console page request's extensions when reads need a token
/// and the request carried none: why, for the page that asks for one.
#[derive(Clone, Debug)]
pub struct SignIn(pub String);

/// Whether `path` fits `template` (`{}` stands for one non-empty segment).
pub(crate) fn fits(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some("{}"), Some(seg)) if !seg.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The authenticated caller of a request, put in the request's extensions
/// by the layer. Absent (or `None` inside): anonymous, or authentication
/// is off.
#[derive(Clone, Debug, Default)]
pub struct Caller(pub Option<Principal>);

/// Why a request is refused: a status (encoded for the request's
/// surface), or an HTTP answer of its own (405 with `Allow`).
enum Refused {
    Status(Status),
    Response(Box<http::Response<tonic::body::Body>>),
}

impl From<Status> for Refused {
    fn from(s: Status) -> Self {
        Refused::Status(s)
    }
}

/// The layer: see the module docs.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
    methods: &'static [(&'static str, Access)],
    routes: &'static [(&'static str, &'static str, &'static str, Access)],
}

impl AuthLayer {
    /// Guards every method with [`METHODS`].
    pub fn new(auth: Arc<Authenticator>) -> Self {
        Self::with_methods(auth, METHODS)
    }

    /// Guards with another table (tests).
    pub fn with_methods(auth: Arc<Authenticator>, methods: &'static [(&'static str, Access)]) -> Self {
        AuthLayer { auth, methods, routes: HTTP_ROUTES }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, layer: self.clone() }
    }
}

/// See [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl AuthLayer {
    /// Decides a request: the caller to hand on, or the refusal; a console
    /// page whose caller must sign in first is handed on with [`SignIn`].
    fn admit<B>(&self, req: &http::Request<B>) -> Result<(Caller, Option<SignIn>), Refused> {
        let path = req.uri().path();
        let grpc = crate::problem::is_grpc(req.headers());
        if let Some(access) = console_route(path).filter(|_| !grpc) {
            if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
                let verb = req.method().as_str();
                return Err(Refused::Response(Box::new(crate::problem::method_not_allowed(verb, path, &["GET"]))));
            }
            return match access {
                Access::Page => match self.authenticate(req, Role::Reader, "the console") {
                    Err(Refused::Status(s)) if s.code() == tonic::Code::Unauthenticated && !has_credentials(req) => {
                        Ok((Caller(None), Some(SignIn(s.message().to_owned()))))
                    }
                    other => other.map(|c| (c, None)),
                },
                _ => Ok((Caller(None), None)),
            };
        }
        let (method, access) = if grpc || !path.starts_with("/v1/") {
            let Some((_, access)) = self.methods.iter().find(|(m, _)| *m == path) else {
                return Err(Status::unimplemented(format!(
                    "{path} is not a method of this server (it is not in the server's method table)"
                ))
                .into());
            };
            (path.rsplit('/').next().unwrap_or(path), *access)
        } else {
            let verb = req.method().as_str();
            let mut same_path = self.routes.iter().filter(|(_, t, _, _)| fits(t, path)).peekable();
            if same_path.peek().is_none() {
                return Err(
                    Status::not_found(format!("{path} is not a resource of this API (see /v1/openapi.json)")).into()
                );
            }
            let allowed: Vec<&str> = same_path.clone().map(|(m, ..)| *m).collect();
            match same_path.find(|(m, ..)| *m == verb) {
                Some((_, _, rpc, access)) => (*rpc, *access),
                None => {
                    return Err(Refused::Response(Box::new(crate::problem::method_not_allowed(verb, path, &allowed))));
                }
            }
        };
        let Access::Role(needed) = access else { return Ok((Caller(None), None)) };
        self.authenticate(req, needed, method).map(|c| (c, None))
    }

    /// Authenticates the caller of `req` and checks it has `needed`.
    fn authenticate<B>(&self, req: &http::Request<B>, needed: Role, method: &str) -> Result<Caller, Refused> {
        if !self.auth.enabled() {
            return Ok(Caller(None));
        }
        let bearer = match req.headers().get(http::header::AUTHORIZATION) {
            None => None,
            Some(v) => {
                let v = v.to_str().map_err(|_| Status::unauthenticated("the authorization header is not text"))?;
                // The scheme is case-insensitive (RFC 7235).
                let token = v
                    .split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim_start())
                    .ok_or_else(|| Status::unauthenticated("the authorization header must be `Bearer <token>`"))?;
                Some(token)
            }
        };
        let cn = req
            .extensions()
            .get::<TlsConnectInfo<crate::conns::ConnInfo>>()
            .and_then(|i| i.peer_certs())
            .and_then(|certs| certs.first().and_then(|c| crate::auth::common_name(c.as_ref())));
        let decided = self.auth.authorize(bearer, cn.as_deref(), needed, method);
        decided.map(Caller).map_err(|e| {
            match e {
                AuthError::Unauthenticated(m) => Status::unauthenticated(m),
                AuthError::PermissionDenied(m) => Status::permission_denied(m),
            }
            .into()
        })
    }
}

/// Whether a request carries credentials (a token or a client certificate).
fn has_credentials<B>(req: &http::Request<B>) -> bool {
    req.headers().contains_key(http::header::AUTHORIZATION)
        || req.extensions().get::<TlsConnectInfo<crate::conns::ConnInfo>>().is_some_and(|i| i.peer_certs().is_some())
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    // Either the inner call or the refusal, unboxed: no allocation per call.
    type Future = Either<std::future::Ready<Result<Self::Response, Self::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match self.layer.admit(&req) {
            Ok((caller, sign_in)) => {
                if let Some(sign_in) = sign_in {
                    req.extensions_mut().insert(sign_in);
                }
                // Only a principal is worth an extension (inserting the
                // first one allocates the request's extension map): an
                // absent `Caller` means anonymous.
                if caller.0.is_some() {
                    req.extensions_mut().insert(caller);
                }
                // The inner service was made ready by poll_ready; keep it
                // and leave a fresh clone behind.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Either::Right(inner.call(req))
            }
            Err(Refused::Status(status)) => Either::Left(std::future::ready(Ok(crate::problem::refusal(
                status,
                crate::problem::is_grpc(req.headers()),
            )))),
            Err(Refused::Response(resp)) => Either::Left(std::future::ready(Ok(*resp))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tonic::Code;
    use tower::{Layer, ServiceExt};

    use super::*;
    use crate::auth::{AuthConfig, hash_token};

    /// Answers OK to anything, saying who called.
    fn echo() -> impl tower::Service<
        http::Request<()>,
        Response = http::Response<tonic::body::Body>,
        Error = Infallible,
        Future = std::future::Ready<Result<http::Response<tonic::body::Body>, Infallible>>,
    > + Clone {
        tower::service_fn(|req: http::Request<()>| {
            let who = req.extensions().get::<Caller>().and_then(|c| c.0.clone()).map(|p| p.name).unwrap_or_default();
            let mut resp = http::Response::new(tonic::body::Body::empty());
            resp.headers_mut().insert("x-caller", who.parse().unwrap());
            std::future::ready(Ok(resp))
        })
    }

    fn authenticator() -> (Arc<Authenticator>, tempfile::TempPath) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(
            &mut f,
            format!("[[token]]\nprincipal = \"will\"\nrole = \"writer\"\nsha256 = \"{}\"\n", hash_token("w"))
                .as_bytes(),
        )
        .unwrap();
        let path = f.into_temp_path();
        let auth =
            Authenticator::new(AuthConfig { tokens_file: Some(path.to_path_buf()), require_auth_for_reads: false })
                .unwrap();
        (auth, path)
    }

    async fn call(layer: &AuthLayer, path: &str, token: Option<&str>) -> http::Response<tonic::body::Body> {
        let mut req =
            http::Request::builder().uri(format!("http://x{path}")).header("content-type", "application/grpc");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        layer.layer(echo()).oneshot(req.body(()).unwrap()).await.unwrap()
    }

    fn code(resp: &http::Response<tonic::body::Body>) -> Code {
        resp.headers().get("grpc-status").map(|v| Code::from_bytes(v.as_bytes())).unwrap_or(Code::Ok)
    }

    #[tokio::test]
    async fn a_method_is_refused_unless_the_table_names_it() {
        let (auth, _file) = authenticator();
        static WITHOUT_APPLY: &[(&str, Access)] =
            &[("/eligibility.v1.EligibilityService/Check", Access::Role(Role::Reader))];
        let narrow = AuthLayer::with_methods(auth.clone(), WITHOUT_APPLY);
        let apply = "/eligibility.v1.AdminService/Apply";
        assert_eq!(code(&call(&narrow, apply, Some("w")).await), Code::Unimplemented, "not in the table: refused");
        assert_eq!(code(&call(&narrow, "/eligibility.v1.EligibilityService/Check", None).await), Code::Ok);
        // The served table names Apply: a writer passes, as itself.
        let full = AuthLayer::new(auth);
        let resp = call(&full, apply, Some("w")).await;
        assert_eq!(code(&resp), Code::Ok);
        assert_eq!(resp.headers()["x-caller"], "will");
        assert_eq!(code(&call(&full, apply, None).await), Code::Unauthenticated);
        assert_eq!(
            code(&call(&full, "/eligibility.v1.AdminService/CreateList", Some("w")).await),
            Code::PermissionDenied
        );
        assert_eq!(
            code(&call(&full, "/eligibility.v1.AdminService/DropEverything", Some("w")).await),
            Code::Unimplemented
        );
        assert_eq!(code(&call(&full, "/grpc.health.v1.Health/Check", Some("nonsense")).await), Code::Ok, "public");
        // The scheme is case-insensitive.
        let mut req =
            http::Request::builder().uri(format!("http://x{apply}")).header("content-type", "application/grpc");
        req = req.header("authorization", "bearer w");
        let resp = full.layer(echo()).oneshot(req.body(()).unwrap()).await.unwrap();
        assert_eq!(resp.headers()["x-caller"], "will");
    }

    #[tokio::test]
    async fn http_routes_are_guarded_by_their_own_table() {
        let (auth, _file) = authenticator();
        let layer = AuthLayer::new(auth);
        let http_call = |method: &str, path: &str, token: Option<&str>| {
            let mut req = http::Request::builder().method(method).uri(format!("http://x{path}"));
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            layer.layer(echo()).oneshot(req.body(()).unwrap())
        };
        let status = |r: http::Response<tonic::body::Body>| r.status().as_u16();
        assert_eq!(status(http_call("GET", "/v1/lists/cyber/check/MX", None).await.unwrap()), 200, "open reads");
        assert_eq!(status(http_call("POST", "/v1/changesets", None).await.unwrap()), 401);
        assert_eq!(status(http_call("POST", "/v1/changesets", Some("w")).await.unwrap()), 200);
        assert_eq!(status(http_call("POST", "/v1/lists", Some("w")).await.unwrap()), 403, "lists need admin");
        let resp = http_call("DELETE", "/v1/lists", Some("w")).await.unwrap();
        assert_eq!(resp.status().as_u16(), 405);
        assert_eq!(resp.headers()["allow"], "GET, POST");
        assert_eq!(status(http_call("GET", "/v1/secrets", Some("w")).await.unwrap()), 404);
    }
}
