//! /openapi.json states the constraints the handlers enforce, so schema-driven clients (and
//! schemathesis `--checks all`) see no difference between the document and the behaviour.

mod common;

use serde_json::Value;
use workload::prime::{MAX_N_EXCLUSIVE, MIN_N};
use workload::routes::tasks::MAX_LIMIT;
use workload::store::{MAX_TITLE_CHARS, TITLE_PATTERN};

/// The schema of a query or path parameter of `method path`.
fn param<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{method} {path} has no parameters"))
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| &p["schema"])
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
}

#[tokio::test]
async fn the_document_states_the_enforced_constraints() {
    let mut config = common::config();
    config.max_work_ms = 250;
    let app = common::spawn(config).await;
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    let schemas = &doc["components"]["schemas"];

    let title = &schemas["NewTask"]["properties"]["title"];
    assert_eq!(title["minLength"], 1, "{title}");
    assert_eq!(title["maxLength"], MAX_TITLE_CHARS, "{title}");
    assert_eq!(title["pattern"], TITLE_PATTERN, "{title}");
    assert_eq!(schemas["NewTask"]["additionalProperties"], false);

    let n = &schemas["HelloRequest"]["properties"]["n"];
    assert_eq!(n["minimum"], MIN_N, "{n}");
    assert_eq!(n["exclusiveMaximum"], MAX_N_EXCLUSIVE, "{n}");
    assert_eq!(n["format"], "int64", "{n}");
    assert!(n.get("maximum").is_none(), "{n}");

    // An empty body (or null) is accepted, so the body is optional.
    let hello = &doc["paths"]["/api/v1/hello"]["post"];
    let required = hello["requestBody"]
        .get("required")
        .and_then(Value::as_bool);
    assert_ne!(required, Some(true), "{hello}");
    assert!(hello["requestBody"].get("content").is_some(), "{hello}");

    let status = &doc["paths"]["/status/{code}"]["get"]["responses"];
    for range in ["2XX", "3XX", "4XX", "5XX"] {
        assert!(
            status.get(range).is_some(),
            "/status/{{code}} lacks {range}: {status}"
        );
    }
    for path in ["/work/cpu", "/work/io"] {
        let responses = &doc["paths"][path]["get"]["responses"];
        assert!(responses.get("503").is_some(), "{path}: {responses}");
    }

    let limit = param(&doc, "/tasks", "get", "limit");
    assert_eq!(
        (&limit["minimum"], &limit["maximum"]),
        (&1.into(), &MAX_LIMIT.into())
    );
    let offset = param(&doc, "/tasks", "get", "offset");
    assert_eq!(offset["minimum"], 0, "{offset}");
    assert_eq!(offset["maximum"], u64::MAX, "{offset}");

    let code = param(&doc, "/status/{code}", "get", "code");
    assert_eq!(
        (&code["minimum"], &code["maximum"]),
        (&200.into(), &599.into())
    );

    // `ms` carries this instance's --max-work-ms, not the default.
    for path in ["/work/cpu", "/work/io"] {
        let ms = param(&doc, path, "get", "ms");
        assert_eq!(ms["minimum"], 0, "{path}: {ms}");
        assert_eq!(ms["maximum"], 250, "{path}: {ms}");
    }
}

/// The bounds in the document are the bounds of the behaviour: just inside is accepted, just
/// outside is rejected.
#[tokio::test]
async fn the_stated_bounds_are_the_enforced_ones() {
    let mut config = common::config();
    config.max_work_ms = 20;
    let app = common::spawn(config).await;

    assert_eq!(app.get("/work/io?ms=20").await.status(), 200);
    common::assert_error(app.get("/work/io?ms=21").await, 422).await;
    assert_eq!(app.get("/tasks?limit=1000&offset=0").await.status(), 200);
    common::assert_error(app.get("/tasks?limit=1001").await, 422).await;
    common::assert_error(app.get("/tasks?limit=0").await, 422).await;
    let max_offset = format!("/tasks?offset={}", u64::MAX);
    assert_eq!(app.get(&max_offset).await.status(), 200);
    assert_eq!(app.get("/status/200").await.status(), 200);
    assert_eq!(app.get("/status/599").await.status(), 599);
    common::assert_error(app.get("/status/199").await, 400).await;
    common::assert_error(app.get("/status/600").await, 400).await;

    let title = |t: String| serde_json::json!({ "title": t }).to_string();
    let r = app
        .post_json("/tasks", &title("x".repeat(MAX_TITLE_CHARS)))
        .await;
    assert_eq!(r.status(), 201);
    for bad in [
        "x".repeat(MAX_TITLE_CHARS + 1),
        format!("x{}", " ".repeat(MAX_TITLE_CHARS)),
        String::new(),
        " \t\n\r\u{c}".to_string(),
    ] {
        let r = app.post_json("/tasks", &title(bad.clone())).await;
        assert_eq!(
            common::assert_error(r, 422).await,
            "invalid_input",
            "{bad:?}"
        );
    }

    let r = app.post_json("/api/v1/hello", r#"{"n": 2}"#).await;
    assert_eq!(r.status(), 200);
    let r = app.post_json("/api/v1/hello", r#"{"n": 1}"#).await;
    common::assert_error(r, 422).await;
    let body = format!(r#"{{"n": {MAX_N_EXCLUSIVE}}}"#);
    common::assert_error(app.post_json("/api/v1/hello", &body).await, 422).await;
}
