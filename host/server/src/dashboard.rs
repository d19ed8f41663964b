//! The web dashboard at `/dashboard`: static files compiled into the binary (no CDN, works offline).
//!
//! The page is plain HTML, CSS and JavaScript; it asks for an API key (kept in `sessionStorage`) and reads
//! the same API as any client (`/v1/workflows`, `/v1/workflows/{id}/runs`, `/v1/workflows/{id}/stats`,
//! `/v1/runs/{id}`). The files themselves need no key.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::routes::PathParam;

/// `(name, content type, bytes)` of every file.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../dashboard/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../dashboard/style.css"),
    ),
];

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some(&(_, content_type, body)) => {
            let mut response = body.into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'",
                ),
            );
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        None => ApiError::not_found("not_found", "no such dashboard file").into_response(),
    }
}

/// `GET /dashboard` (and `/dashboard/`): the page.
pub async fn index() -> Response {
    file("index.html")
}

/// `GET /dashboard/{file}`: a script or style sheet.
pub async fn asset(PathParam(name): PathParam) -> Response {
    file(&name)
}
