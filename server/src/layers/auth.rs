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

use crate::identity::{AuthError, Authenticator, Principal, Role};

pub use crate::routes::Access;
use crate::routes::{Resolved, Route};

/// Put in a console page request's extensions when reads need a token
/// and the request carried none: why, for the page that asks for one.
#[derive(Clone, Debug)]
pub struct SignIn(pub String);

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
}

impl AuthLayer {
    /// Guards every route with the access [`crate::routes::ROUTES`] gives it.
    pub fn new(auth: Arc<Authenticator>) -> Self {
        AuthLayer { auth }
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
        let route: &Route = match Resolved::of(req) {
            Resolved::Route(route) => route,
            Resolved::WrongVerb(surface) => {
                let (verb, path) = (req.method().as_str(), req.uri().path());
                let allowed = crate::routes::verbs_on(surface, path);
                return Err(Refused::Response(Box::new(crate::problem::method_not_allowed(verb, path, &allowed))));
            }
            Resolved::Unknown => {
                let path = req.uri().path();
                return Err(if !crate::problem::is_grpc(req.headers()) && path.starts_with("/v1/") {
                    Status::not_found(format!("{path} is not a resource of this API (see /v1/openapi.json)"))
                } else {
                    Status::unimplemented(format!(
                        "{path} is not a method of this server (it is not in the server's method table)"
                    ))
                }
                .into());
            }
        };
        match route.access {
            Access::Public => Ok((Caller(None), None)),
            Access::Role(needed) => self.authenticate(req, needed, route.op.name()).map(|c| (c, None)),
            Access::Page => match self.authenticate(req, Role::Reader, route.op.name()) {
                Err(Refused::Status(s)) if s.code() == tonic::Code::Unauthenticated && !has_credentials(req) => {
                    Ok((Caller(None), Some(SignIn(s.message().to_owned()))))
                }
                other => other.map(|c| (c, None)),
            },
        }
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
            .and_then(|certs| certs.first().and_then(|c| crate::identity::common_name(c.as_ref())));
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
    use crate::identity::{AuthConfig, hash_token};

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
        call_in(None, layer, path, token).await
    }

    /// A gRPC call, resolved against `table` (default: the served one).
    async fn call_in(
        table: Option<&'static [Route]>,
        layer: &AuthLayer,
        path: &str,
        token: Option<&str>,
    ) -> http::Response<tonic::body::Body> {
        let mut req =
            http::Request::builder().uri(format!("http://x{path}")).header("content-type", "application/grpc");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(()).unwrap();
        if let Some(table) = table {
            req.extensions_mut().insert(crate::routes::resolve_in(table, &http::Method::POST, path, true));
        }
        layer.layer(echo()).oneshot(req).await.unwrap()
    }

    fn code(resp: &http::Response<tonic::body::Body>) -> Code {
        resp.headers().get("grpc-status").map(|v| Code::from_bytes(v.as_bytes())).unwrap_or(Code::Ok)
    }

    #[tokio::test]
    async fn a_method_is_refused_unless_the_table_names_it() {
        let (auth, _file) = authenticator();
        static WITHOUT_APPLY: &[Route] = &[crate::routes::grpc(
            "/eligibility.v1.EligibilityService/Check",
            crate::routes::Op::Check,
            Access::Role(Role::Reader),
            "Check",
            crate::routes::Shape::Unary,
        )];
        let narrow = Some(WITHOUT_APPLY);
        let layer = AuthLayer::new(auth.clone());
        let apply = "/eligibility.v1.AdminService/Apply";
        assert_eq!(
            code(&call_in(narrow, &layer, apply, Some("w")).await),
            Code::Unimplemented,
            "not in the table: refused"
        );
        assert_eq!(code(&call_in(narrow, &layer, "/eligibility.v1.EligibilityService/Check", None).await), Code::Ok);
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
