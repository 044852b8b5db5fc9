//! Rollouts: engineers start, pause, resume and roll back; everyone may
//! watch each gateway's progress.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Serialize;

use super::{ApiError, ApiState, JsonBody, blocking, now_ms, require};
use crate::auth::{Caller, Role};
use crate::ledger::rollouts::{RolloutRequest, RolloutRequestError, StoredRollout};
use crate::rollout::RolloutError;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/rollouts", get(list).post(start))
        .route("/api/rollouts/{id}", get(one))
        .route("/api/rollouts/{id}/{action}", post(act))
}

impl From<RolloutRequestError> for ApiError {
    fn from(e: RolloutRequestError) -> Self {
        let status = match &e {
            RolloutRequestError::NotFound(_) => StatusCode::NOT_FOUND,
            RolloutRequestError::Rollout(RolloutError::NotAllowed { .. }) => StatusCode::CONFLICT,
            RolloutRequestError::Store(e) => {
                tracing::error!("rollout storage failure: {e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError(status, e.to_string())
    }
}

/// A rollout with its counts per phase.
#[derive(Serialize)]
struct RolloutView {
    #[serde(flatten)]
    stored: StoredRollout,
    summary: std::collections::BTreeMap<&'static str, usize>,
}

impl From<StoredRollout> for RolloutView {
    fn from(stored: StoredRollout) -> Self {
        RolloutView {
            summary: stored.rollout.summary(),
            stored,
        }
    }
}

async fn list(State(s): State<ApiState>) -> Result<Json<Vec<RolloutView>>, ApiError> {
    let mut all = s.ledger.rollouts()?;
    all.sort_by_key(|r| std::cmp::Reverse(r.rollout.created_at_ms));
    Ok(Json(all.into_iter().map(RolloutView::from).collect()))
}

async fn one(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<RolloutView>, ApiError> {
    let stored = s
        .ledger
        .rollout(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no rollout `{id}`")))?;
    Ok(Json(stored.into()))
}

async fn start(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JsonBody(request): JsonBody<RolloutRequest>,
) -> Result<Response, ApiError> {
    require(&caller, Role::Engineer)?;
    let ledger = s.ledger.clone();
    let who = caller.name.clone();
    let stored = blocking(move || Ok(ledger.start_rollout(request, &who, now_ms())?)).await?;
    Ok((StatusCode::CREATED, Json(RolloutView::from(stored))).into_response())
}

/// `pause`, `resume` or `rollback` (engineer).
async fn act(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    require(&caller, Role::Engineer)?;
    if !matches!(action.as_str(), "pause" | "resume" | "rollback") {
        return Err(ApiError::not_found(format!(
            "no rollout action `{action}` (pause, resume or rollback)"
        )));
    }
    let ledger = s.ledger.clone();
    let who = caller.name.clone();
    let (stored, ()) = blocking(move || {
        Ok(ledger.update_rollout(&id, |r| {
            let now = now_ms();
            match action.as_str() {
                "pause" => r.rollout.pause(&who, now),
                "resume" => r.rollout.resume(&who, now).map(|_| ()),
                _ => r.rollout.roll_back(&who, now).map(|_| ()),
            }
        })?)
    })
    .await?;
    tracing::info!(rollout = %stored.rollout.id, who = %caller.name, state = stored.rollout.state.name(), "rollout changed by an engineer");
    Ok(Json(RolloutView::from(stored)).into_response())
}
