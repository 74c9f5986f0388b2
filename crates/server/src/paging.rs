//! Paged lists over HTTP: the page as a JSON array (as before paging, so
//! existing clients read the first page unchanged), and where the next page
//! starts in `Link` (`rel="next"`) and `X-Next-Cursor`.

use axum::Json;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// `items` as the body; `next_url` is the list's URL with its query but
/// without a cursor, to which the next cursor is added.
pub fn paged<T: Serialize>(items: Vec<T>, next: Option<String>, next_url: &str) -> Response {
    let mut response = Json(items).into_response();
    if let Some(cursor) = next {
        let sep = if next_url.contains('?') { '&' } else { '?' };
        let link = format!("<{next_url}{sep}cursor={cursor}>; rel=\"next\"");
        for (name, value) in [("link", link), ("x-next-cursor", cursor)] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, v);
            }
        }
    }
    response
}

/// The query of a registry's list: where the page starts and its size.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many (default 1000, at most 10000).
    pub limit: Option<u32>,
    /// The next page: the `X-Next-Cursor` of the previous one (also in its
    /// `Link` header, `rel="next"`).
    pub cursor: Option<String>,
}

/// A list's URL with its query parameters that are set (the cursor
/// apart), for [`paged`]'s `next_url`.
pub fn list_url(path: &str, query: &[(&str, Option<String>)]) -> String {
    let mut url = path.to_string();
    let mut sep = '?';
    for (name, value) in query {
        if let Some(v) = value {
            url.push(sep);
            url.push_str(name);
            url.push('=');
            url.push_str(&percent_encode(v));
            sep = '&';
        }
    }
    url
}

/// Enough percent-encoding for a query value: what is not unreserved.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
