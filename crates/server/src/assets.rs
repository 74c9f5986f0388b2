//! The portals' static files (Bootstrap Italia, its fonts and licences,
//! incasso's own stylesheet), embedded in the binary so that a fresh
//! machine needs nothing but cargo, served under `/static/`.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        (
            $path,
            $content_type,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)) as &[u8],
        )
    };
}

/// Path under `/static/`, content type, bytes.
static ASSETS: &[(&str, &str, &[u8])] = &[
    asset!("bootstrap-italia/LICENSE", "text/plain; charset=utf-8"),
    asset!(
        "bootstrap-italia/css/bootstrap-italia.min.css",
        "text/css; charset=utf-8"
    ),
    asset!(
        "bootstrap-italia/fonts/Lora/OFL.txt",
        "text/plain; charset=utf-8"
    ),
    asset!(
        "bootstrap-italia/fonts/Lora/lora-v20-latin-ext_latin-700.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Lora/lora-v20-latin-ext_latin-700italic.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Lora/lora-v20-latin-ext_latin-italic.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Lora/lora-v20-latin-ext_latin-regular.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Roboto_Mono/LICENSE.txt",
        "text/plain; charset=utf-8"
    ),
    asset!(
        "bootstrap-italia/fonts/Roboto_Mono/roboto-mono-v13-latin-ext_latin-700.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Roboto_Mono/roboto-mono-v13-latin-ext_latin-700italic.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Roboto_Mono/roboto-mono-v13-latin-ext_latin-italic.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Roboto_Mono/roboto-mono-v13-latin-ext_latin-regular.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Titillium_Web/OFL.txt",
        "text/plain; charset=utf-8"
    ),
    asset!(
        "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-300.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-300italic.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-600.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-600italic.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-700.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-700italic.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-italic.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-regular.woff2",
        "font/woff2"
    ),
    asset!(
        "bootstrap-italia/js/bootstrap-italia.bundle.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("bootstrap-italia/svg/sprites.svg", "image/svg+xml"),
    asset!("incasso/fonts.css", "text/css; charset=utf-8"),
    asset!("incasso/icon.svg", "image/svg+xml"),
    asset!("incasso/incasso.css", "text/css; charset=utf-8"),
    asset!("incasso/portal.css", "text/css; charset=utf-8"),
    asset!("portal/qr.js", "text/javascript; charset=utf-8"),
];

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/static/{*path}", get(serve))
        // Browsers ask for it on their own.
        .route(
            "/favicon.ico",
            get(|| serve(Path("incasso/icon.svg".to_string()))),
        )
}

async fn serve(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, bytes)) => {
            let mut resp = (StatusCode::OK, *bytes).into_response();
            let headers = resp.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            // A day: the files change only with incasso's version.
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            resp
        }
        None => (StatusCode::NOT_FOUND, "risorsa inesistente").into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_asset_is_there_and_the_fonts_css_names_only_assets() {
        let css = super::ASSETS
            .iter()
            .find(|(p, _, _)| *p == "incasso/fonts.css")
            .map(|(_, _, b)| std::str::from_utf8(b).unwrap())
            .unwrap();
        let mut named = 0;
        for url in css.split("url(\"../").skip(1) {
            let path = &url[..url.find('"').unwrap()];
            assert!(
                super::ASSETS.iter().any(|(p, _, _)| *p == path),
                "fonts.css names {path}, which is not served"
            );
            named += 1;
        }
        assert_eq!(named, 16);
    }
}
