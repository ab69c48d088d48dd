//! Scenario files (YAML or TOML): the request mix, its load model and thresholds.
//!
//! A file is deserialized into the `*Spec` types (unknown keys are errors, so a typo never silently
//! does nothing), then compiled into a [`Scenario`] whose templates and captures are parsed up front.
//! Every error names the file, line and column.
//!
//! ```yaml
//! name: crud
//! load:
//!   phases:
//!     - { duration: 30s, rate: 10 }
//!     - { duration: 30s, rate: 10, ramp_to: 100 }
//! requests:
//!   - name: ping
//!     weight: 3
//!     path: /ping
//!   - name: task-lifecycle
//!     steps:
//!       - name: create
//!         method: POST
//!         path: /tasks
//!         json: { title: "job {{counter}}" }
//!         capture: { task_id: $.id }
//!       - { name: get, path: "/tasks/{{task_id}}" }
//!       - { name: delete, method: DELETE, path: "/tasks/{{task_id}}" }
//! thresholds: ["p99<250ms", "success_rate>99%"]
//! ```

pub mod capture;
pub mod template;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub use capture::Capture;
pub use template::Template;

/// A scenario file error with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A duration written as `30s`, `1m30s` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dur(pub Duration);

/// A value written as a number or a string (`30` or `"30s"`), as text for a parser.
pub fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(f64),
        Str(String),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Num(n) => n.to_string(),
        Raw::Str(s) => s,
    })
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = number_or_string(d)?;
        crate::parse::duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// The load block of a scenario.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// Closed loop: concurrent users.
    pub users: Option<u64>,
    /// Total requests (iterations), closed or open loop.
    pub requests: Option<u64>,
    /// Run time.
    pub duration: Option<Dur>,
    /// Open loop: arrivals per second.
    pub rate: Option<f64>,
    /// Open loop: ramp linearly from `rate` to `ramp_to` over `duration`.
    pub ramp_to: Option<f64>,
    /// Open loop: cap on iterations in flight (default 1000).
    pub max_in_flight: Option<u64>,
    /// Phases: `{duration, rate, ramp_to}` (open) or `{duration, users, ramp_to}` (closed).
    #[serde(default)]
    pub phases: Vec<PhaseSpec>,
    /// Closed loop: pause between a user's iterations.
    pub think_time: Option<Dur>,
    /// Close a connection once it is this old (after its in-flight request): `10s`, or
    /// `forever` (default 10s; see docs/connections.md).
    pub connection_max_age: Option<crate::lifetime::MaxAge>,
    /// Close a connection after this many requests (default: no limit).
    pub connection_max_requests: Option<u64>,
    /// `false`: a new connection per request.
    pub keepalive: Option<bool>,
}

impl LoadSpec {
    /// The connection-lifetime keys of the block.
    pub fn lifetime(&self) -> crate::lifetime::LifetimeSettings {
        crate::lifetime::LifetimeSettings {
            max_age: self.connection_max_age,
            max_requests: self.connection_max_requests,
            keepalive: self.keepalive,
        }
    }
}

/// One phase.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub name: Option<String>,
    pub duration: Dur,
    /// Open loop: arrivals per second at the phase start.
    pub rate: Option<f64>,
    /// Closed loop: users at the phase start.
    pub users: Option<u64>,
    /// Value (rate or users) at the phase end; default = the start value (a hold).
    pub ramp_to: Option<f64>,
}

/// What a successful response looks like.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Accepted status codes (default: any below 400).
    #[serde(default, deserialize_with = "one_or_many")]
    pub status: Vec<u16>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(u16),
        Many(Vec<u16>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => vec![s],
        Raw::Many(v) => v,
    })
}

/// One HTTP request (a top-level entry, or a step of a flow).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub name: Option<String>,
    /// Relative weight in the mix (top-level entries only; default 1).
    pub weight: Option<u32>,
    pub method: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Raw body template.
    pub body: Option<String>,
    /// JSON body (templates allowed in strings); sets `content-type: application/json`.
    pub json: Option<serde_json::Value>,
    /// `var: $.json.path` or `var: header:name`.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    pub expect: Option<ExpectSpec>,
    /// A flow: requests run in order in one iteration (top-level entries only).
    #[serde(default)]
    pub steps: Vec<RequestSpec>,
}

/// A scenario file as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Base URL (the `--target` flag overrides it).
    pub target: Option<String>,
    /// Headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Initial values of per-user variables.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Per-request timeout.
    pub timeout: Option<Dur>,
    pub load: Option<LoadSpec>,
    #[serde(default)]
    pub requests: Vec<RequestSpec>,
    #[serde(default)]
    pub thresholds: Vec<String>,
}

/// A compiled request.
#[derive(Debug, Clone)]
pub struct Step {
    /// Index into [`Scenario::endpoints`].
    pub endpoint: usize,
    pub method: http::Method,
    pub path: Template,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub body: Option<Template>,
    pub captures: Vec<Capture>,
    /// Accepted statuses; empty = any below 400.
    pub expect: Vec<u16>,
}

impl Step {
    /// True when the body must be kept (for captures).
    pub fn needs_body(&self) -> bool {
        self.captures.iter().any(Capture::needs_body)
    }

    /// Whether `status` counts as success.
    pub fn accepts(&self, status: u16) -> bool {
        if self.expect.is_empty() {
            status < 400
        } else {
            self.expect.contains(&status)
        }
    }
}

/// A weighted entry of the mix: one request or a flow of several.
#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    pub weight: u32,
    pub steps: Vec<Step>,
}

/// An endpoint: the unit of per-request statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub method: String,
    pub path: String,
}

/// A compiled scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub target: Option<String>,
    pub flows: Vec<Flow>,
    /// Cumulative weights of `flows` for sampling.
    pub cumulative: Vec<u64>,
    pub endpoints: Vec<Endpoint>,
    pub variables: HashMap<String, String>,
    pub timeout: Option<Duration>,
    pub load: Option<LoadSpec>,
    pub thresholds: Vec<String>,
}

impl Scenario {
    /// Loads a scenario file; the format follows the extension (`.toml`, else YAML).
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        let text = crate::limits::read_to_string(
            &path.to_string_lossy(),
            crate::limits::MAX_SCENARIO_BYTES,
        )
        .map_err(|e| ScenarioError {
            file: file.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read scenario: {e}"),
        })?;
        let toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        Self::from_str(&file, &text, toml)
    }

    /// Parses scenario text; `file` names it in errors.
    pub fn from_str(file: &str, text: &str, toml: bool) -> Result<Self, ScenarioError> {
        let spec = if toml {
            parse_toml(file, text)?
        } else {
            parse_yaml(file, text)?
        };
        compile(spec).map_err(|e| e.locate(file, text))
    }

    /// Picks a flow by weight from a uniform number in `0..total_weight()`.
    pub fn pick(&self, r: u64) -> usize {
        self.cumulative.partition_point(|c| *c <= r)
    }

    /// Sum of the weights.
    pub fn total_weight(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// A one-request scenario for the quick form (`loadgen --target URL`).
    pub fn single(
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<String>,
    ) -> Result<Self, String> {
        let spec = ScenarioSpec {
            name: Some("quick".into()),
            requests: vec![RequestSpec {
                name: Some(format!("{} {}", method.to_ascii_uppercase(), path)),
                method: Some(method.into()),
                path: Some(path.into()),
                headers: headers.iter().cloned().collect(),
                body,
                ..Default::default()
            }],
            ..Default::default()
        };
        compile(spec).map_err(|e| e.message)
    }
}

fn parse_yaml(file: &str, text: &str) -> Result<ScenarioSpec, ScenarioError> {
    yaml_serde::from_str::<ScenarioSpec>(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        ScenarioError {
            file: file.into(),
            line,
            column,
            message: strip_position(&e.to_string()),
        }
    })
}

fn parse_toml(file: &str, text: &str) -> Result<ScenarioSpec, ScenarioError> {
    toml::from_str::<ScenarioSpec>(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ScenarioError {
            file: file.into(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })
}

/// Removes the " at line X column Y" suffix the YAML parser appends (we print our own).
fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// 1-based line and column of byte `offset`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut off = offset;
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// A compile error: a message plus the snippet of source it is about (to find line and column).
#[derive(Debug)]
struct CompileError {
    message: String,
    /// Text to look for in the source (a key or a value as written).
    near: Vec<String>,
}

impl CompileError {
    fn new(message: impl Into<String>, near: &[&str]) -> Self {
        Self {
            message: message.into(),
            near: near.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Finds the first snippet in the source; line 1, column 1 when not found.
    fn locate(self, file: &str, text: &str) -> ScenarioError {
        let mut pos = (1, 1);
        let mut from = 0;
        // Snippets go from coarse to fine (entry name, then the value): search each after the last.
        for n in self.near.iter().filter(|n| !n.is_empty()) {
            if let Some(i) = text[from..].find(n.as_str()) {
                from += i;
                pos = line_col(text, from);
            }
        }
        ScenarioError {
            file: file.into(),
            line: pos.0,
            column: pos.1,
            message: self.message,
        }
    }
}

fn compile(spec: ScenarioSpec) -> Result<Scenario, CompileError> {
    if spec.requests.is_empty() {
        return Err(CompileError::new(
            "the scenario has no requests: add a `requests:` list with at least one entry",
            &["requests"],
        ));
    }
    let mut defaults = Vec::new();
    for (k, v) in &spec.headers {
        defaults.push(header(k, v, &[k])?);
    }
    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut flows = Vec::new();
    let mut captured: Vec<String> = spec.variables.keys().cloned().collect();
    let mut used: Vec<(String, String)> = Vec::new(); // (var, entry name) for the undefined check
    for (i, entry) in spec.requests.iter().enumerate() {
        let weight = entry.weight.unwrap_or(1);
        let flow_name = entry.name.clone().unwrap_or_else(|| {
            entry
                .path
                .as_ref()
                .map(|p| format!("{} {p}", entry.method.as_deref().unwrap_or("GET")))
                .unwrap_or_else(|| format!("flow-{}", i + 1))
        });
        let anchor = entry
            .name
            .clone()
            .or(entry.path.clone())
            .unwrap_or_default();
        if weight == 0 {
            return Err(CompileError::new(
                format!(
                    "request {flow_name:?}: weight must be at least 1 (remove the entry to disable it)"
                ),
                &[&anchor, "weight"],
            ));
        }
        let step_specs: Vec<&RequestSpec> = if entry.steps.is_empty() {
            vec![entry]
        } else {
            if entry.path.is_some()
                || entry.method.is_some()
                || entry.body.is_some()
                || entry.json.is_some()
            {
                return Err(CompileError::new(
                    format!(
                        "request {flow_name:?} has `steps` and its own method/path/body: put the request into the steps"
                    ),
                    &[&anchor, "steps"],
                ));
            }
            entry.steps.iter().collect()
        };
        let mut steps = Vec::new();
        for s in step_specs {
            if !s.steps.is_empty() {
                return Err(CompileError::new(
                    format!("flow {flow_name:?}: steps cannot have steps of their own"),
                    &[&anchor, "steps"],
                ));
            }
            if s.weight.is_some() && !std::ptr::eq(s, entry) {
                return Err(CompileError::new(
                    format!("flow {flow_name:?}: `weight` belongs on the flow, not on a step"),
                    &[&anchor, "weight"],
                ));
            }
            let step = compile_step(s, &defaults, &mut endpoints, &anchor)?;
            for v in step
                .path
                .vars()
                .chain(step.headers.iter().flat_map(|(_, t)| t.vars()))
                .chain(step.body.iter().flat_map(|t| t.vars()))
            {
                used.push((v.to_string(), s.name.clone().unwrap_or(anchor.clone())));
            }
            captured.extend(step.captures.iter().map(|c| c.var.clone()));
            steps.push(step);
        }
        flows.push(Flow {
            name: flow_name,
            weight,
            steps,
        });
    }
    if endpoints.len() > crate::limits::MAX_ENDPOINTS {
        return Err(CompileError::new(
            format!(
                "the scenario names {} distinct requests; loadgen handles at most {}",
                endpoints.len(),
                crate::limits::MAX_ENDPOINTS
            ),
            &["requests"],
        ));
    }
    for (v, at) in used {
        if !captured.contains(&v) {
            return Err(CompileError::new(
                format!(
                    "variable {v:?} is used but never captured nor set under `variables:` \
                     (capture it with `capture: {{ {v}: $.field }}` in an earlier step)"
                ),
                &[&at, &format!("{{{{{v}"), &v],
            ));
        }
    }
    if let Some(t) = &spec.target {
        crate::client::Target::parse(t).map_err(|e| CompileError::new(e, &["target", t]))?;
    }
    for t in &spec.thresholds {
        crate::threshold::Threshold::parse(t)
            .map_err(|e| CompileError::new(e, &["thresholds", t]))?;
    }
    if let Some(load) = &spec.load {
        crate::plan::LoadPlan::from_spec(load, None)
            .map_err(|e| CompileError::new(format!("load: {e}"), &["load"]))?;
    }
    let mut cumulative = Vec::with_capacity(flows.len());
    let mut acc = 0u64;
    for f in &flows {
        acc += u64::from(f.weight);
        cumulative.push(acc);
    }
    Ok(Scenario {
        name: spec.name.unwrap_or_else(|| "scenario".into()),
        target: spec.target,
        flows,
        cumulative,
        endpoints,
        variables: spec.variables.into_iter().collect(),
        timeout: spec.timeout.map(|d| d.0),
        load: spec.load,
        thresholds: spec.thresholds,
    })
}

fn header(k: &str, v: &str, near: &[&str]) -> Result<(http::HeaderName, Template), CompileError> {
    let name = http::HeaderName::from_bytes(k.as_bytes())
        .map_err(|_| CompileError::new(format!("invalid header name {k:?}"), near))?;
    let t = Template::parse(v).map_err(|e| CompileError::new(e, &[near, &[v]].concat()))?;
    if let Some(s) = t.static_text()
        && http::HeaderValue::from_str(&s).is_err()
    {
        return Err(CompileError::new(
            format!("invalid value for header {k}: {v:?}"),
            &[near, &[v]].concat(),
        ));
    }
    Ok((name, t))
}

fn compile_step(
    s: &RequestSpec,
    defaults: &[(http::HeaderName, Template)],
    endpoints: &mut Vec<Endpoint>,
    anchor: &str,
) -> Result<Step, CompileError> {
    let what = s.name.clone().unwrap_or_else(|| anchor.to_string());
    let near_name = s.name.clone().unwrap_or_else(|| anchor.to_string());
    let path_src = s.path.as_deref().ok_or_else(|| {
        CompileError::new(format!("request {what:?} has no `path`"), &[&near_name])
    })?;
    if !path_src.starts_with('/') && !path_src.starts_with("{{") {
        return Err(CompileError::new(
            format!(
                "request {what:?}: path {path_src:?} must start with / (the target URL gives scheme and host)"
            ),
            &[&near_name, path_src],
        ));
    }
    let path = Template::parse(path_src).map_err(|e| {
        CompileError::new(format!("request {what:?}: {e}"), &[&near_name, path_src])
    })?;
    if let Some(p) = path.static_text() {
        p.parse::<http::uri::PathAndQuery>().map_err(|_| {
            CompileError::new(
                format!("request {what:?}: invalid path {p:?}"),
                &[&near_name, path_src],
            )
        })?;
    }
    let method_src = s
        .method
        .as_deref()
        .unwrap_or("GET")
        .trim()
        .to_ascii_uppercase();
    let method = http::Method::from_bytes(method_src.as_bytes()).map_err(|_| {
        CompileError::new(
            format!("request {what:?}: invalid method {method_src:?}"),
            &[&near_name, "method"],
        )
    })?;
    let mut headers: Vec<(http::HeaderName, Template)> = defaults.to_vec();
    for (k, v) in &s.headers {
        let h = header(k, v, &[&near_name, k])?;
        headers.retain(|(n, _)| *n != h.0);
        headers.push(h);
    }
    if s.body.is_some() && s.json.is_some() {
        return Err(CompileError::new(
            format!("request {what:?} has both `body` and `json`: keep one"),
            &[&near_name, "json"],
        ));
    }
    let body = match (&s.body, &s.json) {
        (Some(b), _) => Some(Template::parse(b).map_err(|e| {
            CompileError::new(format!("request {what:?}: {e}"), &[&near_name, "body"])
        })?),
        (None, Some(j)) => {
            if !headers.iter().any(|(n, _)| n == http::header::CONTENT_TYPE) {
                headers.push((
                    http::header::CONTENT_TYPE,
                    Template::parse("application/json").expect("static"),
                ));
            }
            Some(Template::parse(&j.to_string()).map_err(|e| {
                CompileError::new(format!("request {what:?}: {e}"), &[&near_name, "json"])
            })?)
        }
        _ => None,
    };
    let mut captures = Vec::new();
    for (var, expr) in &s.capture {
        captures.push(Capture::parse(var, expr).map_err(|e| {
            CompileError::new(
                format!("request {what:?}: {e}"),
                &[&near_name, "capture", expr],
            )
        })?);
    }
    let expect = s
        .expect
        .as_ref()
        .map(|e| e.status.clone())
        .unwrap_or_default();
    if let Some(bad) = expect.iter().find(|c| !(100..=599).contains(*c)) {
        return Err(CompileError::new(
            format!("request {what:?}: expected status {bad} is not an HTTP status (100-599)"),
            &[&near_name, "expect"],
        ));
    }
    let name = s
        .name
        .clone()
        .unwrap_or_else(|| format!("{method_src} {path_src}"));
    let endpoint = match endpoints.iter().position(|e| e.name == name) {
        Some(i) => i,
        None => {
            endpoints.push(Endpoint {
                name,
                method: method_src,
                path: path_src.to_string(),
            });
            endpoints.len() - 1
        }
    };
    Ok(Step {
        endpoint,
        method,
        path,
        headers,
        body,
        captures,
        expect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRUD: &str = r#"
name: crud
requests:
  - name: ping
    weight: 3
    path: /ping
  - name: lifecycle
    steps:
      - name: create
        method: POST
        path: /tasks
        json: { title: "t {{counter}}" }
        capture: { task_id: $.id }
        expect: { status: 201 }
      - name: delete
        method: DELETE
        path: "/tasks/{{task_id}}"
"#;

    #[test]
    fn compiles_flows_and_weights() {
        let s = Scenario::from_str("crud.yaml", CRUD, false).unwrap();
        assert_eq!(s.flows.len(), 2);
        assert_eq!(s.endpoints.len(), 3);
        assert_eq!(s.cumulative, vec![3, 4]);
        assert_eq!(s.pick(0), 0);
        assert_eq!(s.pick(2), 0);
        assert_eq!(s.pick(3), 1);
        assert!(s.flows[1].steps[0].accepts(201));
        assert!(!s.flows[1].steps[0].accepts(200));
    }

    #[test]
    fn errors_have_positions() {
        let bad = CRUD.replace("path: /ping", "path: /ping\n    bogus: 1");
        let e = Scenario::from_str("x.yaml", &bad, false).unwrap_err();
        assert_eq!((e.line, e.file.as_str()), (7, "x.yaml"), "{e}");
        assert!(e.message.contains("bogus"), "{e}");

        let bad = CRUD.replace("{{task_id}}", "{{taskid}}");
        let e = Scenario::from_str("x.yaml", &bad, false).unwrap_err();
        assert!(e.message.contains("taskid"), "{e}");
        assert_eq!(e.line, 17, "{e}");

        let bad = CRUD.replace("{{counter}}", "{{randint 9 1}}");
        let e = Scenario::from_str("x.yaml", &bad, false).unwrap_err();
        assert_eq!(e.line, 12, "{e}");
    }

    #[test]
    fn toml_works_and_reports_positions() {
        let t = "name = \"t\"\n[[requests]]\npath = \"/ping\"\n[load]\nusers = 2\nrequests = 10\n";
        let s = Scenario::from_str("t.toml", t, true).unwrap();
        assert_eq!(s.load.unwrap().users, Some(2));
        let e = Scenario::from_str("t.toml", "name = \"t\"\n[[requests]]\npath = 5\n", true)
            .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
        assert_eq!(line_col("é\nx", 99), (2, 2));
    }
}
