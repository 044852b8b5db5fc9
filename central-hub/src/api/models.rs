//! The model registry: engineers upload signed packages; everyone may list
//! them; gateways' downloads are served from here.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use protocol::package::{MAX_PACKAGE_BYTES, Version};

use super::{ApiError, ApiState, blocking, now_ms, require};
use crate::auth::{Caller, Role};
use crate::ledger::model_registry::{ModelRecord, ModelUploadError};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/api/models",
            get(list)
                .post(upload)
                .layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES)),
        )
        .route("/api/models/{name}/{version}", get(one))
        .route("/api/models/{name}/{version}/package", get(download))
}

/// A raw request body whose rejections are JSON errors.
struct RawBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|r| ApiError(r.status(), r.body_text()))
    }
}

impl From<ModelUploadError> for ApiError {
    fn from(e: ModelUploadError) -> Self {
        let status = match &e {
            ModelUploadError::Package(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ModelUploadError::VersionTaken { .. } => StatusCode::CONFLICT,
            ModelUploadError::Store(e) => {
                tracing::error!("model registry storage failure: {e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError(status, e.to_string())
    }
}

/// `POST /api/models` with the package as the body (engineer).
async fn upload(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    RawBody(bytes): RawBody,
) -> Result<Response, ApiError> {
    require(&caller, Role::Engineer)?;
    let ledger = s.ledger.clone();
    let trusted = s.trusted_keys.clone();
    let actor = caller.actor();
    let record = blocking(move || {
        let r = ledger.add_model(&bytes, &trusted, &actor, now_ms());
        if let Err(e) = &r {
            tracing::warn!(who = %actor.name, "model package refused: {e}");
        }
        Ok(r?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

async fn list(State(s): State<ApiState>) -> Result<Json<Vec<ModelRecord>>, ApiError> {
    Ok(Json(s.ledger.models()?))
}

fn find(s: &ApiState, name: &str, version: &str) -> Result<ModelRecord, ApiError> {
    let parsed = Version::parse(version).map_err(ApiError::invalid)?;
    s.ledger
        .model(name, parsed)?
        .ok_or_else(|| ApiError::not_found(format!("no model {name} {version} in the registry")))
}

async fn one(
    State(s): State<ApiState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ModelRecord>, ApiError> {
    Ok(Json(find(&s, &name, &version)?))
}

async fn download(
    State(s): State<ApiState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let record = find(&s, &name, &version)?;
    let bytes = s.ledger.model_package(&record.sha256)?.ok_or_else(|| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the registry lost the bytes of {name} {version}"),
        )
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}-{version}.pdmpkg\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
