//! Tasks CRUD over the bounded in-memory store: the "realistic API" part of the workload.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, ErrorBody, JsonObject};
use crate::state::AppState;
use crate::store::{StoreError, Task};

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page: a list request's cost stays bounded whatever the store holds.
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1..=1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Tasks to skip (default 0).
    #[param(minimum = 0, maximum = 18_446_744_073_709_551_615_u64)]
    pub offset: Option<usize>,
}

/// A page of tasks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskPage {
    pub items: Vec<Task>,
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
}

/// Body of `POST /tasks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// 1..=200 characters as sent, at least one of them not ASCII whitespace; stored trimmed of
    /// ASCII whitespace.
    // Literals because utoipa wants them; tests/openapi.rs ties them to the store's constants.
    #[schema(min_length = 1, max_length = 200, pattern = "[^ \\t\\n\\f\\r]")]
    pub title: String,
    #[serde(default)]
    pub done: bool,
}

#[utoipa::path(get, path = "/tasks", tag = "tasks", params(ListParams),
    responses((status = 200, body = TaskPage), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<TaskPage>, AppError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::invalid(format!(
            "limit must be in 1..={MAX_LIMIT}, got {limit}"
        )));
    }
    let offset = params.offset.unwrap_or(0);
    let (items, total) = state.store.list(offset, limit);
    Ok(Json(TaskPage {
        items,
        total,
        limit,
        offset,
    }))
}

#[utoipa::path(post, path = "/tasks", tag = "tasks", request_body = NewTask,
    responses(
        (status = 201, body = Task, headers(("location" = String, description = "/tasks/{id}"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body above --max-body-bytes", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "Invalid title", body = ErrorBody),
        (status = 507, description = "Store full (only with --tasks-when-full reject)", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(JsonObject(new)): ApiJson<JsonObject<NewTask>>,
) -> Result<Response, AppError> {
    let task = state
        .store
        .create(&new.title, new.done)
        .map_err(|e| match e {
            StoreError::Full(_) => AppError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "store_full",
                e.to_string(),
            ),
            other => AppError::invalid(other.to_string()),
        })?;
    let location = HeaderValue::from_str(&format!("/tasks/{}", task.id))
        .expect("a number is a valid header value");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(task),
    )
        .into_response())
}

#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks",
    params(("id" = u64, Path, description = "Task id")),
    responses((status = 200, body = Task), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<Task>, AppError> {
    state
        .store
        .get(id)
        .map(Json)
        .ok_or_else(|| AppError::not_found(format!("no task with id {id}")))
}

#[utoipa::path(delete, path = "/tasks/{id}", tag = "tasks",
    params(("id" = u64, Path, description = "Task id")),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<StatusCode, AppError> {
    if state.store.delete(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found(format!("no task with id {id}")))
    }
}
