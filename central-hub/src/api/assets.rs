//! Assets with their health, history and registry entry.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, JsonBody, QueryOf, blocking, require, rfc3339};
use crate::assets::AssetRecord;
use crate::auth::{Caller, Role};
use crate::health::HealthPoint;
use crate::registry::{RegistryEntry, RegistryUpdate};
use crate::risk::DEFAULT_CRITICALITY;
use crate::work_orders::WorkOrder;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/assets", get(list))
        .route("/api/assets/{site}/{id}", get(one).put(register))
        .route("/api/assets/{site}/{id}/history", get(history))
        .route("/api/registry", get(registry))
}

#[derive(Serialize)]
struct AssetView {
    #[serde(flatten)]
    record: AssetRecord,
    last_seen: String,
    location: Option<String>,
    criticality: u8,
    registered: bool,
    open_work_orders: Vec<String>,
}

fn view(record: AssetRecord, registry: &[RegistryEntry], orders: &[WorkOrder]) -> AssetView {
    let entry = registry
        .iter()
        .find(|r| r.site == record.site && r.id == record.id);
    AssetView {
        last_seen: rfc3339(record.last_seen_ms),
        location: entry.and_then(|r| r.location.clone()),
        criticality: entry.map_or(DEFAULT_CRITICALITY, |r| r.criticality),
        registered: entry.is_some(),
        open_work_orders: orders
            .iter()
            .filter(|w| w.status.is_open() && w.site == record.site && w.asset_id == record.id)
            .map(|w| w.id.clone())
            .collect(),
        record,
    }
}

async fn list(State(s): State<ApiState>) -> Result<Json<Vec<AssetView>>, ApiError> {
    let registry = s.ledger.registry()?;
    let orders = s.ledger.work_orders()?;
    let views = s
        .ledger
        .assets()?
        .into_iter()
        .map(|r| view(r, &registry, &orders))
        .collect();
    Ok(Json(views))
}

fn find(s: &ApiState, site: &str, id: &str) -> Result<AssetRecord, ApiError> {
    s.ledger
        .assets()?
        .into_iter()
        .find(|a| a.site == site && a.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no asset `{id}` at site `{site}`")))
}

async fn one(
    State(s): State<ApiState>,
    Path((site, id)): Path<(String, String)>,
) -> Result<Json<AssetView>, ApiError> {
    let record = find(&s, &site, &id)?;
    Ok(Json(view(
        record,
        &s.ledger.registry()?,
        &s.ledger.work_orders()?,
    )))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    since_ms: Option<u64>,
}

async fn history(
    State(s): State<ApiState>,
    Path((site, id)): Path<(String, String)>,
    QueryOf(q): QueryOf<HistoryQuery>,
) -> Result<Json<Vec<HealthPoint>>, ApiError> {
    find(&s, &site, &id)?;
    Ok(Json(s.ledger.health_history(
        &site,
        &id,
        q.since_ms.unwrap_or(0),
    )?))
}

async fn register(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((site, id)): Path<(String, String)>,
    JsonBody(update): JsonBody<RegistryUpdate>,
) -> Result<Response, ApiError> {
    require(&caller, Role::Engineer)?;
    let entry = RegistryEntry::from_update(&site, &id, update);
    entry
        .validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let ledger = s.ledger.clone();
    let stored = entry.clone();
    blocking(move || Ok(ledger.register(&[stored])?)).await?;
    tracing::info!(who = %caller.name, site, asset = id, criticality = entry.criticality, "asset registry entry changed");
    Ok(Json(entry).into_response())
}

async fn registry(State(s): State<ApiState>) -> Result<Json<Vec<RegistryEntry>>, ApiError> {
    Ok(Json(s.ledger.registry()?))
}
