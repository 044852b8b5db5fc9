//! The HTTP API and the operators' page.
//!
//! JSON views of the stored state: assets with health and state, the work
//! order queue (most urgent first), gateways, the events received (an
//! asset's history), and ingest counters. Times are
//! RFC 3339 (UTC). The page at `/` is a single self-contained HTML file that
//! polls these endpoints: it works offline in a control room.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::assets::AssetRecord;
use crate::ingest::IngestStats;
use crate::ledger::{GatewayRecord, Ledger};
use crate::work_orders::WorkOrder;
use store::StoreError;

const INDEX_HTML: &str = include_str!("web/index.html");

#[derive(Clone)]
pub struct ApiState {
    pub ledger: Ledger,
    pub stats: Arc<IngestStats>,
}

/// The routes, ready to serve.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/api/assets", get(assets))
        .route("/api/work-orders", get(work_orders))
        .route("/api/work-orders/{id}", get(work_order))
        .route("/api/gateways", get(gateways))
        .route("/api/events", get(events))
        .route("/api/stats", get(stats))
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
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!("API read failed: {e}");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// RFC 3339 UTC, to the second.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[derive(Serialize)]
struct AssetView {
    #[serde(flatten)]
    record: AssetRecord,
    last_seen: String,
}

#[derive(Serialize)]
struct WorkOrderView {
    #[serde(flatten)]
    record: WorkOrder,
    created_at: String,
    updated_at: String,
}

impl From<WorkOrder> for WorkOrderView {
    fn from(record: WorkOrder) -> Self {
        WorkOrderView {
            created_at: rfc3339(record.created_at_ms),
            updated_at: rfc3339(record.updated_at_ms),
            record,
        }
    }
}

#[derive(Serialize)]
struct GatewayView {
    #[serde(flatten)]
    record: GatewayRecord,
    last_seen: String,
}

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
}

async fn healthz(State(s): State<ApiState>) -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "broker_connected": s.stats.snapshot().broker_connected }))
}

async fn assets(State(s): State<ApiState>) -> Result<Json<Vec<AssetView>>, ApiError> {
    let views = s
        .ledger
        .assets()?
        .into_iter()
        .map(|record| AssetView {
            last_seen: rfc3339(record.last_seen_ms),
            record,
        })
        .collect();
    Ok(Json(views))
}

/// Open work first, then by priority, then oldest first.
async fn work_orders(State(s): State<ApiState>) -> Result<Json<Vec<WorkOrderView>>, ApiError> {
    let mut all = s.ledger.work_orders()?;
    all.sort_by_key(|w| (!w.status.is_open(), w.priority, w.created_at_ms));
    Ok(Json(all.into_iter().map(WorkOrderView::from).collect()))
}

async fn work_order(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<WorkOrderView>, ApiError> {
    match s.ledger.work_order(&id)? {
        Some(wo) => Ok(Json(wo.into())),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no work order `{id}`"),
        )),
    }
}

async fn gateways(State(s): State<ApiState>) -> Result<Json<Vec<GatewayView>>, ApiError> {
    let views = s
        .ledger
        .gateways()?
        .into_iter()
        .map(|record| GatewayView {
            last_seen: rfc3339(record.last_seen_ms),
            record,
        })
        .collect();
    Ok(Json(views))
}

/// Which events `/api/events` lists: all filters optional; the newest
/// `limit` (default 10 000) that match, oldest first.
#[derive(Debug, Deserialize)]
struct EventQuery {
    site: Option<String>,
    gateway: Option<String>,
    asset: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct EventView {
    event_id: String,
    site: String,
    gateway: String,
    asset_id: String,
    kind: &'static str,
    state: &'static str,
    previous_state: &'static str,
    score: f64,
    raised_at: String,
    received_at: String,
    work_order: Option<String>,
}

async fn events(
    State(s): State<ApiState>,
    Query(q): Query<EventQuery>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    let keep = |v: &Option<String>, actual: &str| v.as_deref().is_none_or(|want| want == actual);
    let mut matching: Vec<EventView> = s
        .ledger
        .events()?
        .into_iter()
        .filter(|st| {
            let e = &st.event;
            keep(&q.site, &e.site) && keep(&q.gateway, &e.gateway) && keep(&q.asset, &e.asset_id)
        })
        .map(|st| EventView {
            event_id: st.event.event_id.clone(),
            site: st.event.site.clone(),
            gateway: st.event.gateway.clone(),
            asset_id: st.event.asset_id.clone(),
            kind: st.event.kind.as_str(),
            state: st.event.state.as_str(),
            previous_state: st.event.previous_state.as_str(),
            score: st.event.score,
            raised_at: rfc3339(st.event.raised_at_ms),
            received_at: rfc3339(st.received_at_ms),
            work_order: st.work_order,
        })
        .collect();
    let limit = q.limit.unwrap_or(10_000);
    if matching.len() > limit {
        matching.drain(..matching.len() - limit);
    }
    Ok(Json(matching))
}

async fn stats(State(s): State<ApiState>) -> Json<crate::ingest::IngestCounters> {
    Json(s.stats.snapshot())
}
