//! The web console: the registry for people, on the same port as the APIs.
//!
//! Pages render on the server from the same [`View`]s the APIs answer
//! from, so they are readable without JavaScript and a link reproduces a
//! view exactly (`as_of` and `at_revision` are in the URL). The script
//! (embedded, like the styles and the map) adds what needs it: the token
//! (kept in the tab's `sessionStorage` and sent as a header, never a
//! cookie, so there is no cross-site request forgery to defend against),
//! live updates from the event stream, and the write forms, which preview
//! through `validate_only` and record with an idempotency key. A strict
//! Content-Security-Policy allows only the console's own script and styles.
//!
//! Who may see what is the auth layer's decision ([`Access::Page`]): a
//! page whose reader must sign in first arrives with [`SignIn`] and
//! answers a page asking for a token; the write forms are shown to those
//! whose role may write (the write itself is checked by the API, as any).
//!
//! [`Access::Page`]: crate::layers::auth::Access::Page

mod assets;
mod chart;
mod layout;
mod lists;
mod map;
mod pages;
mod params;

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::{Path, Request, State},
    routing::get,
};
use http::{HeaderValue, Response, StatusCode, header};
use maud::Markup;

use self::layout::Ctx;
use crate::{
    app::App,
    identity::{Authenticator, Role},
    layers::auth::{Caller, SignIn},
    reads::View,
    routes::{self, Op, Page, Surface},
};

/// An answer given before the page (a sign-in, a bad parameter), boxed:
/// a response is large and this is the rare path.
type Early = Box<Response<Body>>;

/// What the console's routes share.
#[derive(Clone)]
struct Console {
    app: Arc<App>,
    auth: Arc<Authenticator>,
}

/// The console's routes, from the route table
/// ([`crate::routes::ROUTES`], surface `Console`); when `enabled` is false
/// each answers 404 saying the console is off.
pub fn router(app: Arc<App>, auth: Arc<Authenticator>, enabled: bool) -> Router {
    let off =
        || async { text(StatusCode::NOT_FOUND, "the web console is turned off on this server (console = false)") };
    let pages = routes::of(Surface::Console).fold(Router::new(), |router, route| {
        let endpoint = match (enabled, route.op) {
            (false, _) => get(off),
            (true, Op::Page(Page::Index)) => get(index),
            (true, Op::Page(Page::List)) => get(list),
            (true, Op::Page(Page::Diff)) => get(diff),
            (true, Op::Page(Page::Countries)) => get(country_lookup),
            (true, Op::Page(Page::Country)) => get(country),
            (true, Op::Page(Page::History)) => get(history),
            (true, Op::Asset) => get(assets::serve),
            (true, op) => unreachable!("{op:?} is not a console operation (the route table's test checks)"),
        };
        router.route(route.path, endpoint)
    });
    pages.with_state(Console { app, auth })
}

impl Console {
    /// The context of an anonymous caller who may not write.
    fn anonymous(&self) -> Ctx {
        let snap = self.app.registry.snapshot();
        Ctx {
            who: None,
            auth_enabled: self.auth.enabled(),
            can_write: false,
            head: snap.revision(),
            store_id: snap.store_id_shared(),
        }
    }

    /// The request's context, or the page asking for a token.
    fn ctx(&self, req: &Request) -> Result<Ctx, Early> {
        let mut ctx = self.anonymous();
        ctx.who = req.extensions().get::<Caller>().and_then(|c| c.0.clone());
        ctx.can_write = !ctx.auth_enabled || ctx.who.as_ref().is_some_and(|p| p.role >= Role::Writer);
        match req.extensions().get::<SignIn>() {
            Some(SignIn(why)) => Err(Box::new(html(StatusCode::UNAUTHORIZED, pages::sign_in(&ctx, why)))),
            None => Ok(ctx),
        }
    }

    /// The view at `point` on the current snapshot.
    fn view(&self, point: eligibility::Point) -> Result<View, Early> {
        View::resolve(self.app.registry.snapshot(), point, "at_revision").map_err(|e| Box::new(self.error(e)))
    }

    /// A domain error as a page (its HTTP status from its gRPC code).
    fn error(&self, e: crate::error::Error) -> Response<Body> {
        if e.is_internal() {
            tracing::error!(error = %e, "internal error");
        }
        html(crate::problem::http_status(e.code()), pages::error(&self.anonymous(), &e.to_string()))
    }
}

/// Answers the page, or the early answer (sign-in, a bad parameter).
macro_rules! page {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(resp) => return *resp,
        }
    };
}

/// `GET /`: every list.
async fn index(State(c): State<Console>, req: Request) -> Response<Body> {
    let ctx = page!(c.ctx(&req));
    page!(params::Params::parse(&req, &[]).map_err(|m| c.bad(&ctx, &m)));
    let view = View::head(c.app.registry.snapshot());
    html(StatusCode::OK, lists::index(&ctx, &view))
}

/// `GET /lists/{id}?as_of=&at_revision=`: a list at a point.
async fn list(State(c): State<Console>, Path(id): Path<String>, req: Request) -> Response<Body> {
    let ctx = page!(c.ctx(&req));
    let p = page!(params::Params::parse(&req, &["as_of", "at_revision"]).map_err(|m| c.bad(&ctx, &m)));
    let id = page!(params::list_id(&id).map_err(|m| c.bad(&ctx, &m)));
    let point = page!(p.point("as_of", "at_revision").map_err(|m| c.bad(&ctx, &m)));
    let view = page!(c.view(point));
    match lists::list(&ctx, &view, &id, p.pinned("at_revision")) {
        Ok(m) => html(StatusCode::OK, m),
        Err(e) => c.error(e),
    }
}

/// `GET /lists/{id}/diff?from_as_of=&from_revision=&as_of=&at_revision=`.
async fn diff(State(c): State<Console>, Path(id): Path<String>, req: Request) -> Response<Body> {
    let ctx = page!(c.ctx(&req));
    let keys = ["from_as_of", "from_revision", "as_of", "at_revision"];
    let p = page!(params::Params::parse(&req, &keys).map_err(|m| c.bad(&ctx, &m)));
    let id = page!(params::list_id(&id).map_err(|m| c.bad(&ctx, &m)));
    let to = page!(p.point("as_of", "at_revision").map_err(|m| c.bad(&ctx, &m)));
    let from = page!(p.point("from_as_of", "from_revision").map_err(|m| c.bad(&ctx, &m)));
    let view = page!(c.view(to));
    match pages::diff(&ctx, &view, &id, from) {
        Ok(m) => html(StatusCode::OK, m),
        Err(e) => c.error(e),
    }
}

/// `GET /countries?code=MX`: the lookup form's target, redirected to the
/// country's page (a bad code is a page saying so).
async fn country_lookup(State(c): State<Console>, req: Request) -> Response<Body> {
    let ctx = page!(c.ctx(&req));
    let p = page!(params::Params::parse(&req, &["code"]).map_err(|m| c.bad(&ctx, &m)));
    let code = page!(p.country("code").map_err(|m| c.bad(&ctx, &m)));
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(to) = HeaderValue::from_str(&format!("/countries/{}", code.alpha2())) {
        resp.headers_mut().insert(header::LOCATION, to);
    }
    resp
}

/// `GET /countries/{code}?at_revision=`: a country's timeline on every list.
async fn country(State(c): State<Console>, Path(code): Path<String>, req: Request) -> Response<Body> {
    let ctx = page!(c.ctx(&req));
    let p = page!(params::Params::parse(&req, &["as_of", "at_revision"]).map_err(|m| c.bad(&ctx, &m)));
    let country = page!(params::country("country code", &code).map_err(|m| c.bad(&ctx, &m)));
    let point = page!(p.point("as_of", "at_revision").map_err(|m| c.bad(&ctx, &m)));
    let view = page!(c.view(point));
    html(StatusCode::OK, pages::country(&ctx, &view, country, p.pinned("at_revision")))
}

/// `GET /history?list=&before=`: changesets, newest first.
async fn history(State(c): State<Console>, req: Request) -> Response<Body> {
    let ctx = page!(c.ctx(&req));
    let p = page!(params::Params::parse(&req, &["list", "before"]).map_err(|m| c.bad(&ctx, &m)));
    let list = page!(p.opt_list("list").map_err(|m| c.bad(&ctx, &m)));
    let before = page!(p.revision("before").map_err(|m| c.bad(&ctx, &m)));
    let view = View::head(c.app.registry.snapshot());
    match pages::history(&ctx, &view, list.as_ref(), before) {
        Ok(m) => html(StatusCode::OK, m),
        Err(e) => c.error(e),
    }
}

impl Console {
    /// A bad parameter as a page (400).
    fn bad(&self, ctx: &Ctx, message: &str) -> Early {
        Box::new(html(StatusCode::BAD_REQUEST, pages::error(ctx, message)))
    }
}

/// The security headers of every console answer: only the console's own
/// script, styles and the APIs on this origin; never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A page.
fn html(status: StatusCode, markup: Markup) -> Response<Body> {
    let mut resp = Response::new(Body::from(markup.into_string()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    secure(h);
    // A page at the head changes with every write; what it shows also
    // depends on who asks.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("authorization"));
    resp
}

/// Plain text (the console turned off).
fn text(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(message));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// The headers that keep a page from being framed, sniffed or leaking its
/// URL (which carries the view) to other origins.
fn secure(h: &mut http::HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}
