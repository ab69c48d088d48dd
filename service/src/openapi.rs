//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::OpenApi;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{RefOr, path::Operation};

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

/// Operations whose `ms` query parameter is bounded by `--max-work-ms`.
const WORK_PATHS: [&str; 2] = ["/work/cpu", "/work/io"];

/// The document this instance serves: the static annotations plus the limits only known at
/// startup (`ms` at most `--max-work-ms`), so schema-driven clients see the bounds the handlers
/// actually enforce.
pub fn document(max_work_ms: u64) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for path in WORK_PATHS {
        let operation = doc.paths.paths.get_mut(path).and_then(|p| p.get.as_mut());
        if let Some(op) = operation {
            set_maximum(op, "ms", max_work_ms);
        }
    }
    doc
}

fn set_maximum(op: &mut Operation, name: &str, max: u64) {
    let params = op.parameters.iter_mut().flatten();
    for param in params.filter_map(|p| match p {
        RefOr::T(param) => Some(param),
        RefOr::Ref(_) => None,
    }) {
        if param.name != name {
            continue;
        }
        if let Some(RefOr::T(Schema::Object(schema))) = param.schema.as_mut() {
            schema.maximum = Some(utoipa::Number::UInt(
                usize::try_from(max).unwrap_or(usize::MAX),
            ));
        }
    }
}
