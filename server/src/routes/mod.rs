//! Every route the port serves, once: gRPC methods, HTTP/JSON resources
//! and console pages, each with the operation it is, who may call it, its
//! metrics label, whether it streams and whether it takes the framed fast
//! path. A request is resolved against this table **once**, by the
//! outermost layer ([`RouteLayer`]), into a [`Resolved`] value in its
//! extensions; every other layer (metrics, auth, limits, the fast path)
//! reads that value instead of comparing paths again. The axum routers of
//! the HTTP API and the console, the CORS preflight answer and the OpenAPI
//! document's paths are built from the same table, so a new route is
//! written here and nowhere else. A request the table does not name is
//! resolved to [`Resolved::Unknown`] and refused by the auth layer: closed
//! by default.

use std::task::{Context, Poll};

mod table;

pub use self::table::ROUTES;
#[cfg(test)]
pub(crate) use self::table::grpc;
use crate::identity::Role;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, authenticated or not (health checks, reflection).
    Public,
    /// Callers with at least this role (reads with `reader` are open to
    /// anonymous callers unless reads require authentication).
    Role(Role),
    /// A console page: authenticated as a read, but a caller who must
    /// sign in first is handed on with a sign-in marker (the page asks for
    /// a token) instead of refused; a wrong token is still refused.
    Page,
}

/// The surface a route belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// gRPC (and gRPC-Web, translated to it): `path` is the method's path.
    Grpc,
    /// The HTTP/JSON API: `verb` and the `path` template.
    Http,
    /// The web console (GET and HEAD only).
    Console,
}

/// What a route does. The RPCs are named as in `eligibility.v1`; the
/// HTTP routes that answer an RPC carry the same operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `EligibilityService/Check`.
    Check,
    /// `EligibilityService/BatchCheck`.
    BatchCheck,
    /// `EligibilityService/ListEntries`.
    ListEntries,
    /// `EligibilityService/ListLists`.
    ListLists,
    /// `EligibilityService/GetList`.
    GetList,
    /// `EligibilityService/History`.
    History,
    /// `EligibilityService/Diff`.
    Diff,
    /// `EligibilityService/Watch` (over HTTP: server-sent events).
    Watch,
    /// `AdminService/CreateList`.
    CreateList,
    /// `AdminService/UpdateList`.
    UpdateList,
    /// `AdminService/Apply`.
    Apply,
    /// `AdminService/ReplaceMembers`.
    ReplaceMembers,
    /// `grpc.health.v1.Health/Check`.
    HealthCheck,
    /// `grpc.health.v1.Health/Watch`.
    HealthWatch,
    /// Server reflection (v1 and v1alpha).
    Reflection,
    /// The OpenAPI document.
    OpenApi,
    /// A console page.
    Page(Page),
    /// The console's embedded assets.
    Asset,
}

impl Op {
    /// The operation's name in messages ("Check", "the console").
    pub fn name(self) -> &'static str {
        match self {
            Op::Check => "Check",
            Op::BatchCheck => "BatchCheck",
            Op::ListEntries => "ListEntries",
            Op::ListLists => "ListLists",
            Op::GetList => "GetList",
            Op::History => "History",
            Op::Diff => "Diff",
            Op::Watch => "Watch",
            Op::CreateList => "CreateList",
            Op::UpdateList => "UpdateList",
            Op::Apply => "Apply",
            Op::ReplaceMembers => "ReplaceMembers",
            Op::HealthCheck => "Check",
            Op::HealthWatch => "Watch",
            Op::Reflection => "ServerReflectionInfo",
            Op::OpenApi => "OpenApi",
            Op::Page(_) | Op::Asset => "the console",
        }
    }
}

/// The console's pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `/`: every list.
    Index,
    /// `/lists/{id}`: a list at a point.
    List,
    /// `/lists/{id}/diff`.
    Diff,
    /// `/countries`: the country look-up.
    Countries,
    /// `/countries/{code}`: a country's timeline.
    Country,
    /// `/history`: recent changesets.
    History,
}

/// How a route answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One answer (counted against the in-flight limit).
    Unary,
    /// A long-lived stream (health's Watch, reflection): limited by the
    /// watcher limits rather than the in-flight limit, counted when it
    /// ends, ended at shutdown by the limits layer.
    Stream,
    /// The change stream (gRPC Watch, server-sent events): a stream that
    /// keeps its connection busy and ends at shutdown by itself, with no
    /// body layer more to poll per event.
    ChangeStream,
}

/// How an HTTP route is documented in the OpenAPI document.
#[derive(Debug)]
pub struct Doc {
    /// What it does.
    pub summary: &'static str,
    /// Query parameters: name, schema type (`string`, `integer`,
    /// `boolean`, `date-time`), repeatable.
    pub query: &'static [(&'static str, &'static str, bool)],
    /// The request body's message, if any.
    pub body: Option<&'static str>,
    /// The answer's message (`None`: an event stream, or the document).
    pub answer: Option<&'static str>,
}

/// One route.
#[derive(Debug)]
pub struct Route {
    /// Where it is served.
    pub surface: Surface,
    /// The HTTP method (gRPC: always `POST`, not checked).
    pub verb: &'static str,
    /// gRPC: the method's path; HTTP and console: the path template,
    /// `{name}` standing for one non-empty segment (axum's syntax).
    pub path: &'static str,
    /// What it does.
    pub op: Op,
    /// Who may call it.
    pub access: Access,
    /// Its `method` label in the RPC metrics (a bounded set, never a raw
    /// path).
    pub label: &'static str,
    /// How it answers.
    pub shape: Shape,
    /// Whether it takes the framed fast path past the router
    /// (`grpc::Framed`).
    pub framed: bool,
    /// Its OpenAPI documentation (HTTP routes).
    pub doc: Option<Doc>,
}

/// The metrics label of a request the table does not name.
pub const UNKNOWN_LABEL: &str = "other";

/// The routes of one surface.
pub fn of(surface: Surface) -> impl Iterator<Item = &'static Route> {
    ROUTES.iter().filter(move |r| r.surface == surface)
}

/// What a request is, resolved once against [`ROUTES`].
#[derive(Clone, Copy, Debug)]
pub enum Resolved {
    /// A route of the table.
    Route(&'static Route),
    /// An HTTP or console path of the table, with a verb it does not take
    /// (answered 405 with the verbs it does).
    WrongVerb(Surface),
    /// Nothing the table names: an HTTP path under `/v1/` (404) or
    /// anything else (a gRPC method this server does not have).
    Unknown,
}

impl Resolved {
    /// The route, if the request is one.
    pub fn route(self) -> Option<&'static Route> {
        match self {
            Resolved::Route(r) => Some(r),
            _ => None,
        }
    }

    /// The metrics label.
    pub fn label(self) -> &'static str {
        self.route().map_or(UNKNOWN_LABEL, |r| r.label)
    }

    /// Index of the route in [`ROUTES`] (`ROUTES.len()` for anything
    /// else): per-route state such as metric handles is kept by it.
    pub fn index(self) -> usize {
        match self {
            // The routes are elements of one static slice: the offset is
            // the index.
            Resolved::Route(r) => {
                let offset = (r as *const Route as usize).wrapping_sub(ROUTES.as_ptr() as usize);
                let i = offset / std::mem::size_of::<Route>();
                // A route of another table (a test's) has no place here.
                if ROUTES.get(i).is_some_and(|own| std::ptr::eq(own, r)) { i } else { ROUTES.len() }
            }
            _ => ROUTES.len(),
        }
    }

    /// How the request answers (anything unresolved is refused at once).
    pub fn shape(self) -> Shape {
        self.route().map_or(Shape::Unary, |r| r.shape)
    }

    /// The request's resolution: the one [`RouteLayer`] put in its
    /// extensions, or (a layer or service used on its own, as in unit
    /// tests) resolved now.
    pub fn of<B>(req: &http::Request<B>) -> Resolved {
        match req.extensions().get::<Resolved>() {
            Some(r) => *r,
            None => resolve(req.method(), req.uri().path(), crate::problem::is_grpc(req.headers())),
        }
    }
}

/// Resolves a request: `grpc` says whether its content type is gRPC's
/// (gRPC-Web included).
///
/// A console path is the console's unless the request is gRPC; a path
/// under `/v1/` is the HTTP API's unless the request is gRPC; anything
/// else is looked up among the gRPC methods (so `GET /grpc.health.v1.Health/Check`
/// without a gRPC content type still reaches health, which answers it).
pub fn resolve(verb: &http::Method, path: &str, grpc: bool) -> Resolved {
    resolve_in(ROUTES, verb, path, grpc)
}

/// [`resolve`] against another table (tests of a narrower one).
pub fn resolve_in(table: &'static [Route], verb: &http::Method, path: &str, grpc: bool) -> Resolved {
    let of = |surface: Surface| table.iter().filter(move |r| r.surface == surface);
    if !grpc {
        // The HTTP API's paths and the console's never overlap (the
        // table's test checks): the prefix says which table to search.
        if path.starts_with("/v1/") {
            let mut path_known = false;
            for r in of(Surface::Http) {
                if fits(r.path, path) {
                    if r.verb == verb.as_str() {
                        return Resolved::Route(r);
                    }
                    path_known = true;
                }
            }
            return if path_known { Resolved::WrongVerb(Surface::Http) } else { Resolved::Unknown };
        }
        if let Some(r) = of(Surface::Console).find(|r| fits(r.path, path)) {
            return if verb == http::Method::GET || verb == http::Method::HEAD {
                Resolved::Route(r)
            } else {
                Resolved::WrongVerb(Surface::Console)
            };
        }
    }
    match of(Surface::Grpc).find(|r| r.path.len() == path.len() && r.path == path) {
        Some(r) => Resolved::Route(r),
        None => Resolved::Unknown,
    }
}

/// The verbs the table serves on `path` (for a 405's `Allow`).
pub fn verbs_on(surface: Surface, path: &str) -> Vec<&'static str> {
    of(surface).filter(|r| fits(r.path, path)).map(|r| r.verb).collect()
}

/// Every verb the HTTP API takes, and OPTIONS (a CORS preflight's
/// `Access-Control-Allow-Methods`).
pub fn http_verbs() -> String {
    let mut verbs: Vec<&str> = Vec::new();
    for r in of(Surface::Http) {
        if !verbs.contains(&r.verb) {
            verbs.push(r.verb);
        }
    }
    verbs.push("OPTIONS");
    verbs.join(", ")
}

/// Whether `path` fits `template` (`{name}` stands for one non-empty
/// segment).
pub fn fits(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(seg_t), Some(seg)) if seg_t.starts_with('{') && !seg.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The outermost layer: resolves each request once and puts the
/// [`Resolved`] value in its extensions.
#[derive(Clone, Copy, Default)]
pub struct RouteLayer;

impl<S> tower::Layer<S> for RouteLayer {
    type Service = RouteService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RouteService { inner }
    }
}

/// See [`RouteLayer`].
#[derive(Clone)]
pub struct RouteService<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for RouteService<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let resolved = resolve(req.method(), req.uri().path(), crate::problem::is_grpc(req.headers()));
        req.extensions_mut().insert(resolved);
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;

    fn label(verb: Method, path: &str, grpc: bool) -> &'static str {
        resolve(&verb, path, grpc).label()
    }

    #[test]
    fn each_request_resolves_to_its_route_or_to_unknown() {
        let check = "/eligibility.v1.EligibilityService/Check";
        assert_eq!(label(Method::POST, check, true), "Check");
        assert!(resolve(&Method::POST, check, true).route().unwrap().framed);
        assert_eq!(label(Method::POST, "/grpc.health.v1.Health/Watch", true), "health.Watch");
        assert_eq!(label(Method::POST, "/eligibility.v1.EligibilityService/Nope", true), "other");
        assert_eq!(label(Method::POST, "/eligibility.v1.EligibilityService/Check/x", true), "other");
        assert_eq!(label(Method::GET, "/v1/lists/cyber/check/MX", false), "http.Check");
        assert_eq!(label(Method::POST, "/v1/lists", false), "http.CreateList");
        assert!(matches!(resolve(&Method::DELETE, "/v1/lists", false), Resolved::WrongVerb(Surface::Http)));
        assert!(matches!(resolve(&Method::GET, "/v1/secrets", false), Resolved::Unknown));
        // An empty segment is not a segment.
        assert!(matches!(resolve(&Method::GET, "/v1/lists//check/MX", false), Resolved::Unknown));
        assert_eq!(label(Method::GET, "/lists/cyber", false), "console.page");
        assert_eq!(label(Method::HEAD, "/console/assets/app.js", false), "console.asset");
        assert!(matches!(resolve(&Method::POST, "/", false), Resolved::WrongVerb(Surface::Console)));
        // A gRPC request to a console path is a (missing) gRPC method.
        assert!(matches!(resolve(&Method::POST, "/", true), Resolved::Unknown));
        // Health without a gRPC content type still reaches health.
        assert_eq!(label(Method::GET, "/grpc.health.v1.Health/Check", false), "health.Check");
    }

    #[test]
    fn the_index_of_a_route_is_its_place_in_the_table() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert_eq!(Resolved::Route(r).index(), i);
        }
        assert_eq!(Resolved::Unknown.index(), ROUTES.len());
    }

    #[test]
    fn the_table_is_consistent() {
        for (i, r) in ROUTES.iter().enumerate() {
            // No route is shadowed by an earlier one.
            for earlier in &ROUTES[..i] {
                let same = earlier.surface == r.surface && earlier.verb == r.verb && earlier.path == r.path;
                assert!(!same, "{} {} twice", r.verb, r.path);
            }
            assert_eq!(
                r.doc.is_some(),
                r.surface == Surface::Http,
                "{}: HTTP routes and only they are documented",
                r.path
            );
            assert!(!r.framed || r.surface == Surface::Grpc, "{}: only gRPC methods are framed", r.path);
            let console_op = matches!(r.op, Op::Page(_) | Op::Asset);
            assert_eq!(
                console_op,
                r.surface == Surface::Console,
                "{}: console operations on console routes only",
                r.path
            );
            let http_op = !matches!(r.op, Op::HealthCheck | Op::HealthWatch | Op::Reflection) && !console_op;
            assert!(r.surface != Surface::Http || http_op, "{}: {:?} has no HTTP handler", r.path, r.op);
            match r.surface {
                Surface::Grpc => assert!(r.path.starts_with('/') && r.path[1..].contains('/'), "{}", r.path),
                Surface::Http => assert!(r.path.starts_with("/v1/") && r.label.starts_with("http."), "{}", r.path),
                Surface::Console => {
                    assert!(!r.path.starts_with("/v1/") && r.label.starts_with("console."), "{}", r.path)
                }
            }
            // What a request to the route's own path resolves to is the route.
            let path = r.path.replace("{", "x{").replace(['{', '}'], "");
            let grpc = r.surface == Surface::Grpc;
            let verb = Method::from_bytes(r.verb.as_bytes()).unwrap();
            let found = resolve(&verb, &path, grpc).route().map(|f| std::ptr::eq(f, r) || f.path == r.path);
            assert_eq!(found, Some(true), "{} {path}", r.verb);
        }
    }
}
