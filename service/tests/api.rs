//! Every endpoint and each bad input, against the real app on 127.0.0.1:0.

mod common;

use common::{assert_error, spawn, spawn_default};
use serde_json::{Value, json};

#[tokio::test]
async fn ping_answers_pong_with_identity() {
    let app = spawn_default().await;
    let r = app.get("/ping").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-served-by"], "test-host");
    assert_eq!(r.text().await.unwrap(), "pong");
}

#[tokio::test]
async fn hello_with_given_n() {
    let app = spawn_default().await;
    let r = app
        .post_json("/api/v1/hello", r#"{"n": 600851475143}"#)
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message1"], "Hello, world!");
    assert_eq!(body["n"], 600851475143_u64);
    assert_eq!(body["largest_prime_factor"], 6857);
    let elapsed = body["elapsed_time"].as_f64().unwrap();
    assert!(elapsed >= 0.0);
    let m2 = body["message2"].as_str().unwrap();
    assert!(
        m2.starts_with("The largest prime factor of 600851475143 is 6857. Calculation took ")
            && m2.ends_with(" seconds."),
        "{m2}"
    );
    // JSON Schema's integer includes numbers written with a zero fraction.
    let r = app
        .post_json("/api/v1/hello", r#"{"n": 600851475143.0}"#)
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["largest_prime_factor"], 6857);
}

#[tokio::test]
async fn hello_with_random_n() {
    let app = spawn_default().await;
    for body in ["{}", "", "null"] {
        let r = app.post_json("/api/v1/hello", body).await;
        assert_eq!(r.status(), 200, "body {body:?}");
        let v: Value = r.json().await.unwrap();
        let n = v["n"].as_u64().unwrap();
        assert!((1_000_000_000..10_000_000_000_000).contains(&n), "{n}");
        let f = v["largest_prime_factor"].as_u64().unwrap();
        assert_eq!(n % f, 0);
    }
    // No body and no content type at all, like the original tutorial's clients.
    let r = app
        .client
        .post(app.url("/api/v1/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn hello_rejects_bad_input() {
    let app = spawn_default().await;
    for (body, status, kind) in [
        (r#"{"n": 1}"#, 422, "invalid_input"),
        (r#"{"n": 0}"#, 422, "invalid_input"),
        (r#"{"n": -5}"#, 422, "invalid_input"),
        (r#"{"n": 10000000000000}"#, 422, "invalid_input"),
        (r#"{"n": 18446744073709551616}"#, 422, "invalid_input"),
        (r#"{"n": 2.5}"#, 422, "invalid_input"),
        (r#"{"n": 1e13}"#, 422, "invalid_input"),
        (r#"{"n": 1e300}"#, 422, "invalid_input"),
        (r#"{"n": 1.0}"#, 422, "invalid_input"),
        (r#"{"n": "12"}"#, 422, "invalid_input"),
        (r#"{"m": 12}"#, 422, "invalid_input"),
        (r#""hello""#, 422, "invalid_input"),
        ("[null]", 422, "invalid_input"),
        ("[600851475143]", 422, "invalid_input"),
        ("[]", 422, "invalid_input"),
        (r#"{"n": 12"#, 400, "malformed_json"),
        ("not json", 400, "malformed_json"),
    ] {
        let r = app.post_json("/api/v1/hello", body).await;
        assert_eq!(assert_error(r, status).await, kind, "body {body}");
    }
    let r = app
        .client
        .post(app.url("/api/v1/hello"))
        .header("content-type", "text/plain")
        .body(r#"{"n": 12}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error(r, 415).await, "unsupported_media_type");
    // The edges of the accepted range work.
    let r = app.post_json("/api/v1/hello", r#"{"n": 2}"#).await;
    assert_eq!(r.json::<Value>().await.unwrap()["largest_prime_factor"], 2);
    let r = app
        .post_json("/api/v1/hello", r#"{"n": 9999999999999}"#)
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let mut config = common::config();
    config.max_body_bytes = 1024;
    let app = spawn(config).await;
    let big = format!(r#"{{"title": "{}"}}"#, "x".repeat(4096));
    let r = app.post_json("/tasks", &big).await;
    assert_eq!(assert_error(r, 413).await, "payload_too_large");
    let r = app.post_json("/api/v1/hello", &big).await;
    assert_eq!(assert_error(r, 413).await, "payload_too_large");
}

#[tokio::test]
async fn tasks_crud() {
    let app = spawn_default().await;
    let r = app.post_json("/tasks", r#"{"title": "write tests"}"#).await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let task: Value = r.json().await.unwrap();
    assert_eq!(task["title"], "write tests");
    assert_eq!(task["done"], false);
    assert_eq!(location, format!("/tasks/{}", task["id"]));

    let r = app.get(&location).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), task);

    let r = app
        .post_json("/tasks", r#"{"title": "second", "done": true}"#)
        .await;
    assert_eq!(r.status(), 201);
    let list: Value = app.get("/tasks").await.json().await.unwrap();
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][1]["done"], true);

    let r = app.client.delete(app.url(&location)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = app.client.delete(app.url(&location)).send().await.unwrap();
    assert_eq!(assert_error(r, 404).await, "not_found");
    let r = app.get(&location).await;
    assert_eq!(assert_error(r, 404).await, "not_found");
}

#[tokio::test]
async fn tasks_pagination_and_bad_params() {
    let app = spawn_default().await;
    for i in 0..7 {
        let r = app
            .post_json("/tasks", &json!({ "title": format!("t{i}") }).to_string())
            .await;
        assert_eq!(r.status(), 201);
    }
    let page: Value = app
        .get("/tasks?limit=3&offset=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 7);
    assert_eq!(page["limit"], 3);
    assert_eq!(page["offset"], 2);
    let titles: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["t2", "t3", "t4"]);
    for (q, status) in [
        ("?limit=0", 422),
        ("?limit=1001", 422),
        ("?limit=abc", 400),
        ("?offset=-1", 400),
    ] {
        let r = app.get(&format!("/tasks{q}")).await;
        assert_error(r, status).await;
    }
    let r = app.get("/tasks/not-a-number").await;
    assert_eq!(assert_error(r, 400).await, "bad_request");
}

#[tokio::test]
async fn task_titles_are_validated() {
    let app = spawn_default().await;
    for body in [
        r#"{"title": ""}"#.to_string(),
        r#"{"title": "   "}"#.to_string(),
        json!({ "title": "x".repeat(201) }).to_string(),
        r#"{"title": 5}"#.to_string(),
        r#"{}"#.to_string(),
        r#"{"title": "a", "extra": 1}"#.to_string(),
        r#"["a", true]"#.to_string(),
        r#"["a"]"#.to_string(),
        "null".to_string(),
    ] {
        let r = app.post_json("/tasks", &body).await;
        assert_eq!(assert_error(r, 422).await, "invalid_input", "{body}");
    }
    let r = app.post_json("/tasks", r#"{"title": "#).await;
    assert_eq!(assert_error(r, 400).await, "malformed_json");
    let r = app
        .client
        .post(app.url("/tasks"))
        .body(r#"{"title": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error(r, 415).await, "unsupported_media_type");
}

#[tokio::test]
async fn a_full_store_evicts_the_oldest_task_and_every_create_succeeds() {
    let mut config = common::config();
    config.tasks_capacity = 3;
    let app = spawn(config).await;
    for i in 1..=5 {
        let r = app
            .post_json("/tasks", &json!({"title": i.to_string()}).to_string())
            .await;
        assert_eq!(r.status(), 201, "create {i}");
    }
    let list: Value = app.get("/tasks").await.json().await.unwrap();
    assert_eq!(list["total"], 3);
    let ids: Vec<u64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [3, 4, 5], "the oldest two made room");
    assert_eq!(app.get("/tasks/1").await.status(), 404);
    assert_eq!(
        app.metric("workload_tasks_evicted_total", &[]).await,
        Some(2.0)
    );
}

#[tokio::test]
async fn with_reject_a_full_store_answers_507_and_never_grows() {
    let mut config = common::config();
    config.tasks_capacity = 3;
    config.tasks_when_full = workload::store::WhenFull::Reject;
    let app = spawn(config).await;
    for i in 0..3 {
        let r = app
            .post_json("/tasks", &json!({"title": i.to_string()}).to_string())
            .await;
        assert_eq!(r.status(), 201);
    }
    let r = app
        .post_json("/tasks", r#"{"title": "one too many"}"#)
        .await;
    assert_eq!(assert_error(r, 507).await, "store_full");
    let list: Value = app.get("/tasks").await.json().await.unwrap();
    assert_eq!(list["total"], 3);
    let r = app.client.delete(app.url("/tasks/1")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = app.post_json("/tasks", r#"{"title": "fits again"}"#).await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        app.metric("workload_tasks_evicted_total", &[]).await,
        Some(0.0)
    );
}

#[tokio::test]
async fn work_endpoints() {
    let mut config = common::config();
    config.max_work_ms = 500;
    let app = spawn(config).await;

    let start = std::time::Instant::now();
    let r: Value = app.get("/work/cpu?ms=60").await.json().await.unwrap();
    assert_eq!(r["kind"], "cpu");
    assert_eq!(r["requested_ms"], 60);
    assert!(r["elapsed_ms"].as_f64().unwrap() >= 60.0, "{r}");
    assert!(start.elapsed().as_millis() >= 60);

    let r: Value = app.get("/work/io?ms=80").await.json().await.unwrap();
    assert_eq!(r["kind"], "io");
    assert!(r["elapsed_ms"].as_f64().unwrap() >= 80.0, "{r}");

    let r: Value = app.get("/work/io").await.json().await.unwrap();
    assert_eq!(r["requested_ms"], 100, "default ms");

    for path in ["/work/cpu?ms=501", "/work/io?ms=100000"] {
        let r = app.get(path).await;
        assert_eq!(assert_error(r, 422).await, "invalid_input", "{path}");
    }
    for path in ["/work/cpu?ms=abc", "/work/io?ms=-3"] {
        let r = app.get(path).await;
        assert_eq!(assert_error(r, 400).await, "bad_request", "{path}");
    }
}

#[tokio::test]
async fn status_endpoint() {
    let app = spawn_default().await;
    let r = app.get("/status/200").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], 200);
    let r = app.get("/status/204").await;
    assert_eq!(r.status(), 204);
    for code in [404_u16, 418, 500, 503, 599] {
        let r = app.get(&format!("/status/{code}")).await;
        assert_eq!(assert_error(r, code).await, "requested_status");
    }
    for path in ["/status/99", "/status/600", "/status/abc"] {
        let r = app.get(path).await;
        assert_eq!(assert_error(r, 400).await, "bad_request", "{path}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_shape() {
    let app = spawn_default().await;
    let r = app.get("/no/such/route").await;
    assert_eq!(assert_error(r, 404).await, "not_found");
    let r = app.client.put(app.url("/ping")).send().await.unwrap();
    assert!(r.headers()["allow"].to_str().unwrap().contains("GET"));
    assert_eq!(assert_error(r, 405).await, "method_not_allowed");
    let r = app
        .client
        .get(app.url("/api/v1/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error(r, 405).await, "method_not_allowed");
    let r = app.client.delete(app.url("/tasks")).send().await.unwrap();
    assert_eq!(assert_error(r, 405).await, "method_not_allowed");
    // The metrics listener has only /metrics.
    let r = app
        .client
        .get(format!("http://{}/nope", app.metrics_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error(r, 404).await, "not_found");
    let r = app
        .client
        .get(format!("http://{}/metrics", app.metrics_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-served-by"], "test-host");
}

#[tokio::test]
async fn probes_and_info() {
    let app = spawn_default().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let info: Value = app.get("/info").await.json().await.unwrap();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["hostname"], "test-host");
    assert!(info["worker_threads"].as_u64().unwrap() >= 1);
    assert!(info["cpu_workers"].as_u64().unwrap() >= 1);
    assert!(info["cpu_quota_cores"].as_f64().unwrap() > 0.0);
    assert!(
        ["cgroup_v2", "cgroup_v1", "host"].contains(&info["cpu_quota_source"].as_str().unwrap())
    );
    assert_eq!(info["draining"], false);

    app.lifecycle.start_draining();
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "draining");
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "liveness unaffected"
    );
}

#[tokio::test]
async fn openapi_document_and_offline_docs() {
    let app = spawn_default().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/ping",
        "/api/v1/hello",
        "/tasks",
        "/tasks/{id}",
        "/work/cpu",
        "/work/io",
        "/status/{code}",
        "/healthz",
        "/readyz",
        "/info",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["schemas"]["HelloResponse"].is_object());

    // The docs page and its assets are served by the binary itself (vendored Swagger UI).
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    for asset in [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/swagger-initializer.js",
    ] {
        let r = app.get(asset).await;
        assert_eq!(r.status(), 200, "{asset}");
        let text = r.text().await.unwrap();
        assert!(text.len() > 100, "{asset} is empty");
        if asset.ends_with("initializer.js") {
            assert!(
                text.contains("/openapi.json"),
                "initializer points at the document"
            );
        }
    }
    assert!(
        !html.contains("https://"),
        "the docs page must not load anything from the internet"
    );
}
