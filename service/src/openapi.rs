//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::OpenApi;

use crate::routes::{hello, ops, ping, tasks, work};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "scalebench workload", description = "The HTTP API under test. Every response carries `x-served-by: <hostname>`; every error is an `ErrorBody`."),
    paths(
        ping::ping,
        hello::hello,
        tasks::list, tasks::create, tasks::get, tasks::delete,
        work::cpu, work::io, work::status,
        ops::healthz, ops::readyz, ops::info,
    ),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "traffic", description = "Load targets; subject to load shedding, timeout and fault injection"),
        (name = "tasks", description = "In-memory CRUD; subject to load shedding, timeout and fault injection"),
        (name = "ops", description = "Probes and identity; never shed or faulted"),
    )
)]
pub struct ApiDoc;
