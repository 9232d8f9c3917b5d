//! # server — Atelier's HTTP edge
//!
//! Brief overview: an axum router that speaks MLflow's REST protocol
//! (tracking, registry, logged models, proxied artifacts) under
//! `/api/2.0/mlflow` (and the `/ajax-api` mirror the web UI uses), serves
//! the Studio pages and their live-update stream, and authenticates
//! requests. One module per resource under `mlflow/`; [`error`] is the one
//! table from failures to HTTP status; [`wire`] is the only code that knows
//! MLflow's JSON shapes.
//!
//! Handlers never block the async runtime: store calls run on the blocking
//! pool through [`AppState::db`].

pub mod atelier_api;
pub mod audit;
pub mod auth;
pub mod error;
mod mlflow;
/// MLflow's registry webhooks: the sender and the delivery loop the binary starts.
pub use mlflow::webhooks as mlflow_webhooks;
pub mod openapi;
pub mod people;
pub mod req;
pub mod routes;
pub mod site;
mod studio_routes;
pub mod validate;
pub mod wire;
pub mod workspace;

use std::net::SocketAddr;
use std::sync::Arc;

use artifacts::ArtifactStore;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use store::MetadataStore;

pub use auth::{AuthMode, Identity, Role, hash_token, new_token};
use error::{ApiError, ApiResult};
pub use routes::{Access, BodyKind, Declared, Routes};
pub use site::SitePolicy;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn MetadataStore>,
    pub artifacts: ArtifactStore,
    pub auth: AuthMode,
    /// Largest artifact upload accepted, in bytes.
    pub max_artifact_bytes: u64,
    /// Largest request body other than a streamed upload, in bytes.
    pub max_request_bytes: usize,
    /// Host names and web origins allowed to reach the server.
    pub site: Arc<SitePolicy>,
    /// The background job queue (AutoML, batch transform, …), when running.
    pub jobs: Option<Arc<jobs::Queue>>,
    /// How this process sends MLflow webhooks (tests, URL policy), when it does.
    pub mlflow_webhooks: Option<mlflow::webhooks::Sender>,
}

impl AppState {
    /// Run a store operation on the blocking thread pool.
    pub async fn db<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&dyn MetadataStore) -> store::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| {
                ApiError::new(
                    error::ErrorCode::InternalError,
                    format!("store task failed: {e}"),
                )
            })?
            .map_err(ApiError::from)
    }
}

/// The whole application.
/// The MLflow release whose REST protocol the tracking server implements
/// (the `mlflow` client the compatibility suite pins); `GET /version` answers it.
pub const MLFLOW_PROTOCOL_VERSION: &str = "3.17.2";

pub fn router(state: AppState) -> Router {
    router_with(state, Routes::new())
}

/// Atelier's own routes, each with its declared permission (see [`routes`]).
pub fn own_routes() -> Routes<AppState> {
    let api = mlflow::routes;
    Routes::new()
        .nest("/api/2.0/mlflow", api())
        .nest("/ajax-api/2.0/mlflow", api())
        .nest("/api/3.0/mlflow", api())
        .nest("/ajax-api/3.0/mlflow", api())
        .nest(
            "/api/2.0/mlflow-artifacts",
            mlflow::artifacts::proxy_routes(),
        )
        .nest(
            "/ajax-api/2.0/mlflow-artifacts",
            mlflow::artifacts::proxy_routes(),
        )
        .merge(mlflow::ui_routes())
        .nest("/api/atelier", atelier_api::routes())
        .get("/health", Access::Public, || async { "OK" })
        // MLflow's clients gate features on this (span logging needs >= 3.4): it names the
        // MLflow release whose protocol Atelier speaks; Atelier's own version rides in a header
        .get("/version", Access::Public, || async {
            (
                [("x-atelier-version", env!("CARGO_PKG_VERSION"))],
                MLFLOW_PROTOCOL_VERSION,
            )
        })
        .get("/api/atelier/routes", Access::Read, routes::listing)
        .get("/api/atelier/openapi.json", Access::Read, openapi::serve)
        // MLflow 3 span ingestion (OTLP/HTTP, protobuf or JSON; the handler checks the type)
        .add(
            axum::http::Method::POST,
            "/v1/traces",
            Access::Write,
            BodyKind::Raw,
            mlflow::traces::otlp_export,
        )
        .merge(studio_routes::routes())
}

/// The whole application plus routes owned by other crates (e.g. endpoints
/// from `serving`), which must carry their own state already. Every route
/// declares its permission; the guard (`auth::middleware`) enforces it along
/// with the Host, Origin, content-type and body-size rules.
pub fn router_with(state: AppState, extra: Routes) -> Router {
    let (own, mut table) = own_routes().into_parts();
    let (extra, extra_table) = extra.into_parts();
    table.extend(extra_table);
    let table = Arc::new(routes::Table::new(table));
    let guard = auth::Guard {
        state: state.clone(),
        table: table.clone(),
    };
    Router::new()
        .merge(extra.with_state::<AppState>(()))
        .merge(own)
        .fallback(studio_routes::page)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            auth::middleware,
        ))
        .layer(axum::Extension(table))
        .layer(DefaultBodyLimit::max(state.max_request_bytes))
        .with_state(state)
}

/// Serve until `shutdown` resolves. Sockets get TCP_NODELAY: MLflow's server
/// loses ~44 ms per keep-alive request to Nagle + delayed ACK without it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, Routes::new(), shutdown).await
}

/// [`serve`] with extra routes (see [`router_with`]).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    extra: Routes,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("could not set TCP_NODELAY: {e}");
        }
    });
    axum::serve(
        listener,
        router_with(state, extra).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
