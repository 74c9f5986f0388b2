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
