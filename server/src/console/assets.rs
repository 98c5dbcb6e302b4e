//! The console's static files, embedded in the binary (building and
//! running need cargo only). Each is linked with a digest of its content,
//! so a browser may keep it for good and a new build is fetched at once.

use std::sync::LazyLock;

use axum::{
    body::Body,
    extract::{Path, Request},
};
use http::{HeaderValue, Response, StatusCode, header};
use sha2::{Digest, Sha256};

/// (name, content type, content).
const FILES: &[(&str, &str, &[u8])] = &[
    ("console.css", "text/css; charset=utf-8", include_bytes!("../../assets/console/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/console/console.js")),
];

/// Each file's digest (12 hex digits of its SHA-256), by index in [`FILES`].
static DIGESTS: LazyLock<Vec<String>> =
    LazyLock::new(|| FILES.iter().map(|(_, _, bytes)| hex::encode(&Sha256::digest(bytes)[..6])).collect());

/// The URL of an embedded file, with its digest.
pub(super) fn url(name: &str) -> String {
    let digest = FILES.iter().position(|(n, ..)| *n == name).map(|i| DIGESTS[i].as_str()).unwrap_or("");
    format!("/console/assets/{name}?v={digest}")
}

/// `GET /console/assets/{name}`.
pub(super) async fn serve(Path(name): Path<String>, req: Request) -> Response<Body> {
    let Some(i) = FILES.iter().position(|(n, ..)| *n == name) else {
        let mut resp = Response::new(Body::from(format!("no console file {name:?}")));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return resp;
    };
    let (_, content_type, bytes) = FILES[i];
    let digest = &DIGESTS[i];
    let current = req.uri().query().is_some_and(|q| q == format!("v={digest}"));
    let etag = format!("\"{digest}\"");
    let not_modified = req.headers().get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut resp = Response::new(if not_modified { Body::empty() } else { Body::from(bytes) });
    if not_modified {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(tag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, tag);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if current { "public, max-age=31536000, immutable" } else { "no-cache" }),
    );
    resp
}
