//! The work-order queue and what operators do with it.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, JsonBody, QueryOf, blocking, now_ms, require, rfc3339};
use crate::audit::{Actor, AuditEntry};
use crate::auth::{Caller, Role};
use crate::ledger::Ledger;
use crate::ledger::operations::{OperationError, TransitionRequest};
use crate::risk::{SlaState, sla_state};
use crate::scheduler::Day;
use crate::work_orders::{WorkOrder, WorkOrderStatus, required_skill};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/work-orders", get(list))
        .route("/api/work-orders/{id}", get(detail))
        .route("/api/work-orders/{id}/transition", post(transition))
        .route("/api/work-orders/{id}/assign", post(assign))
        .route("/api/work-orders/{id}/schedule", post(schedule))
        .route("/api/work-orders/{id}/audit", get(audit))
        .route("/api/audit", get(audit_all))
}

#[derive(Serialize)]
pub(super) struct WorkOrderView {
    #[serde(flatten)]
    record: WorkOrder,
    created_at: String,
    updated_at: String,
    due_at: String,
    sla_state: SlaState,
    required_skill: &'static str,
    location: Option<String>,
}

impl WorkOrderView {
    pub(super) fn new(s: &ApiState, record: WorkOrder, now: u64) -> Self {
        let location = s
            .ledger
            .registry_entry(&record.site, &record.asset_id)
            .ok()
            .flatten()
            .and_then(|r| r.location);
        WorkOrderView {
            created_at: rfc3339(record.created_at_ms),
            updated_at: rfc3339(record.updated_at_ms),
            due_at: rfc3339(record.due_at_ms),
            sla_state: sla_state(
                &s.ledger.policy().sla,
                record.created_at_ms,
                record.due_at_ms,
                record.closed_at_ms,
                now,
            ),
            required_skill: required_skill(record.kind, record.asset_kind),
            location,
            record,
        }
    }
}

#[derive(Serialize)]
struct DetailView {
    #[serde(flatten)]
    view: WorkOrderView,
    audit: Vec<AuditView>,
}

#[derive(Serialize)]
struct AuditView {
    #[serde(flatten)]
    entry: AuditEntry,
    at: String,
}

impl From<AuditEntry> for AuditView {
    fn from(entry: AuditEntry) -> Self {
        AuditView {
            at: rfc3339(entry.at_ms),
            entry,
        }
    }
}

/// `status` is a comma-separated list; `sort` one of priority (default),
/// due, created, risk.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    site: Option<String>,
    asset: Option<String>,
    kind: Option<String>,
    sort: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(s): State<ApiState>,
    QueryOf(q): QueryOf<ListQuery>,
) -> Result<Json<Vec<WorkOrderView>>, ApiError> {
    let statuses: Option<Vec<String>> = q
        .status
        .as_deref()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    if let Some(list) = &statuses {
        for st in list {
            if serde_json::from_value::<WorkOrderStatus>(serde_json::Value::String(st.clone()))
                .is_err()
            {
                return Err(ApiError::invalid(format!("unknown status `{st}`")));
            }
        }
    }
    let keep = |v: &Option<String>, actual: &str| v.as_deref().is_none_or(|want| want == actual);
    let mut all: Vec<WorkOrder> = s
        .ledger
        .work_orders()?
        .into_iter()
        .filter(|w| {
            statuses
                .as_ref()
                .is_none_or(|l| l.iter().any(|st| st == w.status.as_str()))
                && keep(&q.site, &w.site)
                && keep(&q.asset, &w.asset_id)
                && keep(&q.kind, w.kind.as_str())
        })
        .collect();
    match q.sort.as_deref().unwrap_or("priority") {
        "priority" => all.sort_by_key(|w| (!w.status.is_open(), w.priority, w.due_at_ms)),
        "due" => all.sort_by_key(|w| (!w.status.is_open(), w.due_at_ms, w.priority)),
        "created" => all.sort_by_key(|w| std::cmp::Reverse(w.created_at_ms)),
        "risk" => all.sort_by(|a, b| {
            (!a.status.is_open())
                .cmp(&!b.status.is_open())
                .then(b.risk.risk.total_cmp(&a.risk.risk))
        }),
        other => {
            return Err(ApiError::invalid(format!(
                "unknown sort `{other}` (priority, due, created or risk)"
            )));
        }
    }
    all.truncate(q.limit.unwrap_or(usize::MAX));
    let now = now_ms();
    Ok(Json(
        all.into_iter()
            .map(|w| WorkOrderView::new(&s, w, now))
            .collect(),
    ))
}

async fn detail(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<DetailView>, ApiError> {
    let wo = s
        .ledger
        .work_order(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no work order `{id}`")))?;
    let audit = s.ledger.audit(Some(&id))?;
    Ok(Json(DetailView {
        view: WorkOrderView::new(&s, wo, now_ms()),
        audit: audit.into_iter().map(AuditView::from).collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionBody {
    to: Option<WorkOrderStatus>,
    note: Option<String>,
    reason: Option<String>,
    findings: Option<String>,
}

async fn transition(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TransitionBody>,
) -> Result<Response, ApiError> {
    let req = TransitionRequest {
        to: body.to,
        note: body.note,
        reason: body.reason,
        findings: body.findings,
    };
    change(s, &caller, move |l, who, now| {
        l.transition(&id, req, who, now)
    })
    .await
}

/// Runs an operator's change to a work order (off the async workers) and
/// answers with the work order as changed.
async fn change(
    s: ApiState,
    caller: &Caller,
    op: impl FnOnce(&Ledger, &Actor, u64) -> Result<WorkOrder, OperationError> + Send + 'static,
) -> Result<Response, ApiError> {
    require(caller, Role::Operator)?;
    let now = now_ms();
    let ledger = s.ledger.clone();
    let actor = caller.actor();
    let wo = blocking(move || Ok(op(&ledger, &actor, now)?)).await?;
    Ok(Json(WorkOrderView::new(&s, wo, now)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    crew: String,
}

async fn assign(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<Response, ApiError> {
    let crew = s.crew(&body.crew)?.clone();
    change(s, &caller, move |l, who, now| {
        l.assign(&id, &crew, who, now)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    crew: String,
    day: Day,
}

async fn schedule(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ScheduleBody>,
) -> Result<Response, ApiError> {
    let crew = s.crew(&body.crew)?.clone();
    change(s, &caller, move |l, who, now| {
        l.schedule(&id, &crew, body.day, who, now)
    })
    .await
}

async fn audit(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    if s.ledger.work_order(&id)?.is_none() {
        return Err(ApiError::not_found(format!("no work order `{id}`")));
    }
    let entries = s.ledger.audit(Some(&id))?;
    Ok(Json(entries.into_iter().map(AuditView::from).collect()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    work_order: Option<String>,
    limit: Option<usize>,
}

async fn audit_all(
    State(s): State<ApiState>,
    QueryOf(q): QueryOf<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let mut entries = s.ledger.audit(q.work_order.as_deref())?;
    let limit = q.limit.unwrap_or(10_000);
    if entries.len() > limit {
        entries.drain(..entries.len() - limit);
    }
    Ok(Json(entries.into_iter().map(AuditView::from).collect()))
}
