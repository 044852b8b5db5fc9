//! Gateways, the events received, and ingest counters.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, QueryOf, rfc3339};
use crate::ledger::GatewayRecord;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/gateways", get(gateways))
        .route("/api/events", get(events))
        .route("/api/stats", get(stats))
}

#[derive(Serialize)]
struct GatewayView {
    #[serde(flatten)]
    record: GatewayRecord,
    last_seen: String,
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
    QueryOf(q): QueryOf<EventQuery>,
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
