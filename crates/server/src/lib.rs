//! incasso's HTTP surface.
//!
//! - `/health`
//! - `/gpd/...`: pagoPA's GPD APIs, each under its own version ([`gpd`])
//! - `/api/v1/...`: incasso's own API ([`admin`]), documented at
//!   `/api/openapi.json` and browsable at `/api/docs` (Swagger UI, vendored
//!   into the binary so it works offline)

pub mod admin;
pub mod assets;
pub mod auth;
pub mod backoffice;
pub mod bus_api;
pub mod checkout;
pub mod digitpos;
pub mod error;
pub mod gpd;
pub mod metrics;
pub mod node;
pub mod node_access;
pub mod notices;
pub mod notify_api;
pub mod paging;
pub mod portal;
pub mod pos;
pub mod recon_api;
pub mod webhooks;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use incasso_app::{App, Ctx};
use incasso_store::Store;
use std::future::Future;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// The largest request body accepted. A GPD position with five installments
/// of five transfers each is about 20 KiB; a megabyte leaves ample room for
/// metadata while keeping a hostile client from filling memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler receives: the application, from which each request
/// takes a context with its caller.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    /// The citizen portal's per-client limits ([`portal::limit`]).
    pub limits: std::sync::Arc<portal::limit::Limiter>,
    /// Who may call `paForNode` ([`node_access`]).
    pub node_access: std::sync::Arc<node_access::NodeAccess>,
    /// The process's counters for `GET /metrics` ([`metrics`]).
    pub metrics: std::sync::Arc<metrics::Metrics>,
}

impl AppState {
    /// With the portal's default limits and no trusted proxy.
    pub fn new(app: App) -> AppState {
        AppState {
            app,
            limits: std::sync::Arc::new(portal::limit::Limiter::new(Default::default())),
            node_access: Default::default(),
            metrics: Default::default(),
        }
    }

    /// With these limits (and trusted proxies) instead.
    pub fn with_limits(mut self, settings: portal::limit::LimitSettings) -> AppState {
        self.limits = std::sync::Arc::new(portal::limit::Limiter::new(settings));
        self
    }

    /// With these callers of `paForNode` only.
    pub fn with_node_access(mut self, access: node_access::NodeAccess) -> AppState {
        self.node_access = std::sync::Arc::new(access);
        self
    }

    /// The context of one request, for `caller`.
    pub fn ctx(&self, caller: auth::Caller) -> Ctx {
        self.app.ctx(caller.0)
    }

    pub fn store(&self) -> &Store {
        &self.app.store
    }
}

pub fn router(state: AppState) -> Router {
    let openapi = notify_api::documented(webhooks::documented(admin::ApiDoc::openapi()));
    let guard = axum::middleware::from_fn_with_state(state.clone(), auth::tenant_guard);
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics::render))
        .route("/pagopa/paForNode", axum::routing::post(node::pa_for_node))
        .route(
            "/pay/{fiscalCode}/{noticeNumber}",
            get(checkout::pay_page).post(checkout::pay),
        )
        .route(
            "/pay/{fiscalCode}/{noticeNumber}/esito",
            get(checkout::outcome),
        )
        .nest("/gpd", gpd::routes(&state))
        .nest(
            "/api/v1",
            admin::routes()
                .merge(webhooks::routes())
                .merge(digitpos::routes())
                .merge(notify_api::routes())
                .route_layer(guard)
                .layer(axum::middleware::from_fn(error::problem_json)),
        )
        .merge(webhooks::public_routes())
        .merge(backoffice::routes())
        .merge(portal::routes(&state))
        .merge(pos::routes())
        .merge(assets::routes())
        .merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi))
        // Every route, under its template (a route layer sees it matched).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(error::retry_after))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    match incasso_app::ops::health(&state.app).await {
        Ok(()) => (
            StatusCode::OK,
            Json(
                serde_json::json!({"status": "UP", "database": format!("{:?}", state.store().dialect())}),
            ),
        ),
        Err(e) => {
            tracing::warn!(code = e.code, "health check: database not answering");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "DOWN"})),
            )
        }
    }
}

/// Ready to take traffic: the database answers and has every migration
/// this binary knows (a load balancer sends nothing before; `/health` only
/// says the process is alive and reaches its database).
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match incasso_app::ops::readiness(&state.app).await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "READY"}))),
        Err(not) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                serde_json::json!({"status": "NOT_READY", "code": not.code, "detail": not.detail}),
            ),
        ),
    }
}

async fn not_found() -> error::ApiError {
    error::ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "risorsa inesistente")
}

/// Serves until `shutdown` completes, then stops accepting and lets the
/// requests in flight finish, with the background jobs of
/// [`incasso_app::jobs`] running beside it. Tests pass a listener bound to
/// port 0.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_state(listener, AppState::new(app), shutdown).await
}

/// [`serve`] with a state of the caller's making (the portal's limits and
/// trusted proxies of `incasso serve`'s settings).
pub async fn serve_state(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let jobs = incasso_app::jobs::start(&state.app);
    // The peer's address reaches handlers (ConnectInfo): the portal's
    // limits count requests per client.
    let result = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    jobs.stop();
    result
}

/// [`serve`] with default settings: the public URL is the listener's
/// address, and there is no data directory.
pub async fn serve_with_listener(
    listener: TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let public_url = format!("http://{}", listener.local_addr()?);
    let app = App::new(store, incasso_app::Settings::new(&public_url));
    serve(listener, app, shutdown).await
}
