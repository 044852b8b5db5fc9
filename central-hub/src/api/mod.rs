//! The HTTP API and the operators' page.
//!
//! JSON views of the stored state and the operators' actions on it: the
//! work-order queue (most urgent first) and each work order's life
//! ([`work_orders`]); assets with health, history and their registry entry
//! ([`assets`]); crews and the schedule ([`schedule`]); gateways, events
//! and ingest counters ([`fleet`]). Every `/api` route needs a bearer token
//! ([`crate::auth`]). Times are Unix milliseconds (`*_ms`) and RFC 3339 UTC
//! (`*_at`); days are `YYYY-MM-DD` (UTC). Errors are `{"error": "..."}`
//! with a 4xx status that says whose fault it is, and change nothing.
//!
//! The page at `/` (HTML, script and style compiled into the binary) polls
//! these endpoints: no CDN, so it works offline in a control room.

mod assets;
mod fleet;
mod models;
mod rollouts;
mod schedule;
mod work_orders;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router, middleware};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::auth::{self, Caller, Tokens};
use crate::ingest::IngestStats;
use crate::ledger::Ledger;
use crate::ledger::operations::OperationError;
use crate::scheduler::Crew;
use store::StoreError;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");

/// Largest request body accepted (JSON bodies here are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct ApiState {
    pub ledger: Ledger,
    pub stats: Arc<IngestStats>,
    pub tokens: Tokens,
    pub crews: Arc<Vec<Crew>>,
    /// Keys whose model packages the registry accepts.
    pub trusted_keys: Arc<Vec<protocol::package::VerifyingKey>>,
}

impl ApiState {
    fn crew(&self, id: &str) -> Result<&Crew, ApiError> {
        self.crews.iter().find(|c| c.id == id).ok_or_else(|| {
            let known: Vec<&str> = self.crews.iter().map(|c| c.id.as_str()).collect();
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("no crew `{id}` (crews: {})", known.join(", ")),
            )
        })
    }
}

/// The routes, ready to serve.
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/api/me", get(me))
        .merge(work_orders::routes())
        .merge(assets::routes())
        .merge(schedule::routes())
        .merge(fleet::routes())
        .merge(models::routes())
        .merge(rollouts::routes())
        .route_layer(middleware::from_fn_with_state(
            state.tokens.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/app.css", get(app_css))
        .route("/healthz", get(healthz))
        .merge(api)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled, then finishes open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// A failure turned into a JSON error response.
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    fn not_found(what: String) -> Self {
        ApiError(StatusCode::NOT_FOUND, what)
    }

    fn invalid(what: String) -> Self {
        ApiError(StatusCode::UNPROCESSABLE_ENTITY, what)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!("API storage failure: {e}");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<OperationError> for ApiError {
    fn from(e: OperationError) -> Self {
        let status = match &e {
            OperationError::NotFound(_) => StatusCode::NOT_FOUND,
            OperationError::InvalidTransition { .. } => StatusCode::CONFLICT,
            OperationError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            OperationError::Store(e) => {
                tracing::error!("API storage failure: {e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError(status, e.to_string())
    }
}

/// A JSON request body whose rejections (malformed, wrong fields, too
/// large, wrong content type) are JSON errors like every other.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => Err(ApiError(rejection.status(), rejection.body_text())),
        }
    }
}

/// Query parameters whose rejections (unknown or malformed parameters)
/// are JSON errors like every other.
pub(crate) struct QueryOf<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for QueryOf<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryOf(v)),
            Err(rejection) => Err(ApiError(rejection.status(), rejection.body_text())),
        }
    }
}

/// 403 unless the caller may do what `role` may.
fn require(caller: &Caller, role: auth::Role) -> Result<(), ApiError> {
    caller
        .require(role)
        .map_err(|why| ApiError(StatusCode::FORBIDDEN, why))
}

/// Runs a ledger write off the async workers (it waits for the writer lock
/// and an fsync).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the change failed: {e}"),
        )
    })?
}

/// RFC 3339 UTC, to the second.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
}

async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

async fn app_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}

async fn healthz(State(s): State<ApiState>) -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "broker_connected": s.stats.snapshot().broker_connected }))
}

async fn me(Extension(caller): Extension<Caller>) -> Json<Caller> {
    Json(caller)
}
