//! Scenario files (YAML or TOML): the request mix, its load model and thresholds.
//!
//! A file is parsed once: deserialized into the plain [`spec`] types (unknown keys are errors, so a
//! typo never silently does nothing), then compiled into a [`Scenario`] that holds everything typed:
//! templates and captures, the load plan ([`load`]), the thresholds and the target. Every error
//! names the file, line and column.
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
pub mod load;
pub mod spec;
pub mod template;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

pub use capture::Capture;
pub use spec::{Dur, ExpectSpec, LoadSpec, PhaseSpec, RequestSpec, ScenarioSpec};
pub use template::Template;

use crate::client::Target;
use crate::lifetime::LifetimeSettings;
use crate::plan::Load;
use crate::threshold::Threshold;

/// A scenario file error with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
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

    /// What of the response the step needs beyond its status (for captures).
    pub fn wants(&self) -> crate::client::Want {
        crate::client::Want {
            body: self.needs_body(),
            headers: self.captures.iter().any(Capture::needs_headers),
        }
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

/// A compiled scenario: what a run needs of the file, typed.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// The file's `target:` (the `--target` flag wins over it).
    pub target: Option<Target>,
    pub flows: Vec<Flow>,
    /// Cumulative weights of `flows` for sampling.
    pub cumulative: Vec<u64>,
    pub endpoints: Vec<Endpoint>,
    pub variables: HashMap<String, String>,
    pub timeout: Option<Duration>,
    /// The `load:` block (the default plan without one); command-line load flags apply to it
    /// through [`Load::with_flags`].
    pub load: Load,
    /// The connection keys of the `load:` block.
    pub lifetime: LifetimeSettings,
    pub thresholds: Vec<Threshold>,
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
    let mut vars = Vars {
        captured: spec.variables.keys().cloned().collect(),
        used: Vec::new(),
    };
    for (i, entry) in spec.requests.iter().enumerate() {
        let flow = compile_flow(i, entry, &defaults, &mut endpoints, &mut vars)?;
        flows.push(flow);
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
    for (v, at) in vars.used {
        if !vars.captured.contains(&v) {
            return Err(CompileError::new(
                format!(
                    "variable {v:?} is used but never captured nor set under `variables:` \
                     (capture it with `capture: {{ {v}: $.field }}` in an earlier step)"
                ),
                &[&at, &format!("{{{{{v}"), &v],
            ));
        }
    }
    let target = spec
        .target
        .as_deref()
        .map(|t| Target::parse(t).map_err(|e| CompileError::new(e, &["target", t])))
        .transpose()?;
    let thresholds = spec
        .thresholds
        .iter()
        .map(|t| Threshold::parse(t).map_err(|e| CompileError::new(e, &["thresholds", t])))
        .collect::<Result<Vec<_>, _>>()?;
    let load_spec = spec.load.unwrap_or_default();
    let load = load::compile(&load_spec)
        .map_err(|e| CompileError::new(format!("load: {e}"), &["load"]))?;
    let mut cumulative = Vec::with_capacity(flows.len());
    let mut acc = 0u64;
    for f in &flows {
        acc += u64::from(f.weight);
        cumulative.push(acc);
    }
    Ok(Scenario {
        name: spec.name.unwrap_or_else(|| "scenario".into()),
        target,
        flows,
        cumulative,
        endpoints,
        variables: spec.variables.into_iter().collect(),
        timeout: spec.timeout.map(|d| d.0),
        load,
        lifetime: load::lifetime(&load_spec),
        thresholds,
    })
}

/// The variables of a scenario's templates: which are set (`variables:` or a capture) and which
/// are used where, so a use of one never set is an error at load time rather than a failed request.
struct Vars {
    captured: Vec<String>,
    /// (variable, name of the entry that uses it).
    used: Vec<(String, String)>,
}

/// One entry of `requests:`: a single request, or a flow of `steps`.
fn compile_flow(
    i: usize,
    entry: &RequestSpec,
    defaults: &[(http::HeaderName, Template)],
    endpoints: &mut Vec<Endpoint>,
    vars: &mut Vars,
) -> Result<Flow, CompileError> {
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
        let step = compile_step(s, defaults, endpoints, &anchor)?;
        for v in step
            .path
            .vars()
            .chain(step.headers.iter().flat_map(|(_, t)| t.vars()))
            .chain(step.body.iter().flat_map(|t| t.vars()))
        {
            vars.used
                .push((v.to_string(), s.name.clone().unwrap_or(anchor.clone())));
        }
        vars.captured
            .extend(step.captures.iter().map(|c| c.var.clone()));
        steps.push(step);
    }
    Ok(Flow {
        name: flow_name,
        weight,
        steps,
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
        assert_eq!(
            (s.load.plan.concurrency(), s.load.plan.requests()),
            (2, Some(10))
        );
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
