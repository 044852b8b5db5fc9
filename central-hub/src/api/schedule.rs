//! Crews and the inspection schedule.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, JsonBody, QueryOf, blocking, now_ms, require, rfc3339};
use crate::auth::{Caller, Role};
use crate::scheduler::{Crew, Day, Planned};
use crate::work_orders::WorkOrderStatus;

/// Most days one schedule view covers.
const MAX_VIEW_DAYS: u32 = 92;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/crews", get(crews))
        .route("/api/schedule", get(view))
        .route("/api/schedule/plan", post(plan))
}

async fn crews(State(s): State<ApiState>) -> Json<Vec<Crew>> {
    Json(s.crews.to_vec())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewQuery {
    from: Option<Day>,
    days: Option<u32>,
}

#[derive(Serialize)]
struct BookingView {
    work_order: String,
    crew: String,
    day: Day,
    site: String,
    asset_id: String,
    priority: u8,
    status: WorkOrderStatus,
    due_at: String,
    late: bool,
}

#[derive(Serialize)]
struct LateView {
    work_order: String,
    due_at: String,
    planned_day: Option<Day>,
    reason: String,
}

#[derive(Serialize)]
struct ScheduleView {
    from: Day,
    days: Vec<Day>,
    crews: Vec<Crew>,
    bookings: Vec<BookingView>,
    late: Vec<LateView>,
}

/// The schedule from `from` (default today) for `days` (default 14), and
/// every active work order that is or will be late: booked after its due
/// day, or still unscheduled past it.
async fn view(
    State(s): State<ApiState>,
    QueryOf(q): QueryOf<ViewQuery>,
) -> Result<Json<ScheduleView>, ApiError> {
    let now = now_ms();
    let from = q.from.unwrap_or_else(|| Day::from_ms(now));
    let n = q.days.unwrap_or(14);
    if !(1..=MAX_VIEW_DAYS).contains(&n) {
        return Err(ApiError::invalid(format!(
            "days must be 1-{MAX_VIEW_DAYS}, got {n}"
        )));
    }
    let days: Vec<Day> = (0..n as i32).map(|i| from.plus(i)).collect();
    let last = from.plus(n as i32 - 1);
    let mut bookings = Vec::new();
    let mut late = Vec::new();
    for (b, wo) in s.ledger.scheduled()? {
        let is_late = b.day > Day::from_ms(wo.due_at_ms);
        if is_late {
            late.push(LateView {
                work_order: wo.id.clone(),
                due_at: rfc3339(wo.due_at_ms),
                planned_day: Some(b.day),
                reason: format!("booked for {}, after its due day", b.day),
            });
        }
        if b.day >= from && b.day <= last {
            bookings.push(BookingView {
                work_order: b.work_order,
                crew: b.crew,
                day: b.day,
                site: b.site,
                asset_id: wo.asset_id,
                priority: wo.priority,
                status: wo.status,
                due_at: rfc3339(wo.due_at_ms),
                late: is_late,
            });
        }
    }
    for wo in s.ledger.work_orders()? {
        let waiting = matches!(
            wo.status,
            WorkOrderStatus::Open | WorkOrderStatus::Acknowledged
        );
        if waiting && wo.due_at_ms < now {
            late.push(LateView {
                work_order: wo.id.clone(),
                due_at: rfc3339(wo.due_at_ms),
                planned_day: None,
                reason: "overdue and not scheduled".into(),
            });
        }
    }
    bookings.sort_by(|a, b| (a.day, &a.crew, a.priority).cmp(&(b.day, &b.crew, b.priority)));
    Ok(Json(ScheduleView {
        from,
        days,
        crews: s.crews.to_vec(),
        bookings,
        late,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanBody {}

#[derive(Serialize)]
struct PlanView {
    planned: Vec<Planned>,
    late: Vec<LateView>,
}

async fn plan(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JsonBody(_): JsonBody<PlanBody>,
) -> Result<Response, ApiError> {
    require(&caller, Role::Operator)?;
    let ledger = s.ledger.clone();
    let crews = s.crews.clone();
    let actor = caller.actor();
    let plan = blocking(move || Ok(ledger.plan_schedule(&crews, &actor, now_ms())?)).await?;
    let late = plan
        .late
        .into_iter()
        .map(|u| LateView {
            work_order: u.work_order,
            due_at: rfc3339(u.due.end_ms()),
            planned_day: u.planned_day,
            reason: u.reason,
        })
        .collect();
    Ok(Json(PlanView {
        planned: plan.planned,
        late,
    })
    .into_response())
}
