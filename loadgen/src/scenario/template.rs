//! String templates for paths, headers and bodies: `{{randint 1 100}}`, `{{uuid}}`, `{{counter}}`,
//! `{{user}}`, `{{iteration}}`, `{{timestamp_ms}}`, `{{env NAME}}` and captured variables
//! (`{{task_id}}` or `{{var task_id}}`).
//!
//! Templates are parsed once when the scenario loads (so a typo fails before any request is sent)
//! and rendered into a reused buffer on the hot path.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    RandInt(i64, i64),
    Uuid,
    Counter,
    User,
    Iteration,
    TimestampMs,
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

/// What rendering needs from the running user.
pub struct RenderCtx<'a, R: Rng> {
    pub rng: &'a mut R,
    /// Global counter shared by all users (`{{counter}}` is unique across the run).
    pub counter: &'a AtomicU64,
    pub user: u64,
    pub iteration: u64,
    pub vars: &'a HashMap<String, String>,
}

/// Rendering failed: a variable was not captured (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("variable {0:?} is not set (its capture failed or has not run yet)")]
pub struct MissingVar(pub String);

impl Template {
    /// Parses `src`. Errors name the offending expression.
    pub fn parse(src: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = src;
        let mut lit = String::new();
        while let Some(open) = rest.find("{{") {
            lit.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed '{{{{' in template {src:?}"))?;
            let expr = after[..close].trim();
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(parse_expr(expr)?);
            rest = &after[close + 2..];
        }
        lit.push_str(rest);
        if lit.contains("}}") {
            return Err(format!(
                "'}}}}' without an opening '{{{{' in template {src:?}"
            ));
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Self { parts })
    }

    /// True when rendering always gives the same string.
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// The text of a static template (empty for an empty template).
    pub fn static_text(&self) -> Option<String> {
        if !self.is_static() {
            return None;
        }
        Some(
            self.parts
                .iter()
                .map(|p| match p {
                    Part::Lit(s) => s.as_str(),
                    _ => "",
                })
                .collect(),
        )
    }

    /// Names of the variables the template reads.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// Renders into `out` (cleared first).
    pub fn render<R: Rng>(
        &self,
        ctx: &mut RenderCtx<'_, R>,
        out: &mut String,
    ) -> Result<(), MissingVar> {
        out.clear();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::RandInt(a, b) => {
                    let v = ctx.rng.random_range(*a..=*b);
                    let _ = write!(out, "{v}");
                }
                Part::Uuid => {
                    let bytes: [u8; 16] = ctx.rng.random();
                    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
                    let _ = write!(out, "{id}");
                }
                Part::Counter => {
                    let v = ctx.counter.fetch_add(1, Ordering::Relaxed);
                    let _ = write!(out, "{v}");
                }
                Part::User => {
                    let _ = write!(out, "{}", ctx.user);
                }
                Part::Iteration => {
                    let _ = write!(out, "{}", ctx.iteration);
                }
                Part::TimestampMs => {
                    let ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis())
                        .unwrap_or(0);
                    let _ = write!(out, "{ms}");
                }
                Part::Var(name) => match ctx.vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => return Err(MissingVar(name.clone())),
                },
            }
        }
        Ok(())
    }
}

fn parse_expr(expr: &str) -> Result<Part, String> {
    let words: Vec<&str> = expr.split_whitespace().collect();
    let bad_args = |usage: &str| format!("bad template expression {{{{{expr}}}}}: usage {usage}");
    match words.as_slice() {
        [] => Err("empty template expression {{}}".into()),
        ["randint", a, b] => {
            let a: i64 = a.parse().map_err(|_| bad_args("{{randint MIN MAX}}"))?;
            let b: i64 = b.parse().map_err(|_| bad_args("{{randint MIN MAX}}"))?;
            if a > b {
                return Err(format!(
                    "bad template expression {{{{{expr}}}}}: MIN {a} is above MAX {b}"
                ));
            }
            Ok(Part::RandInt(a, b))
        }
        ["randint", ..] => Err(bad_args("{{randint MIN MAX}}")),
        ["uuid"] => Ok(Part::Uuid),
        ["counter"] => Ok(Part::Counter),
        ["user"] => Ok(Part::User),
        ["iteration"] => Ok(Part::Iteration),
        ["timestamp_ms"] => Ok(Part::TimestampMs),
        // `NAME:-DEFAULT`, as in the shell: a scenario shipped for many targets (own-service.yaml)
        // loads with a sensible value when the variable is unset, and says so in its text.
        ["env", spec] => match spec.split_once(":-") {
            Some((name, default)) => Ok(Part::Lit(
                std::env::var(name).unwrap_or_else(|_| default.to_string()),
            )),
            None => std::env::var(spec).map(Part::Lit).map_err(|_| {
                format!("environment variable {spec} (used as {{{{{expr}}}}}) is not set")
            }),
        },
        ["var", name] if is_ident(name) => Ok(Part::Var((*name).to_string())),
        [name] if is_ident(name) => Ok(Part::Var((*name).to_string())),
        _ => Err(format!(
            "unknown template expression {{{{{expr}}}}}: use randint MIN MAX, uuid, counter, user, \
             iteration, timestamp_ms, env NAME[:-DEFAULT], or a captured variable name"
        )),
    }
}

/// A variable name: letters, digits, `_` and `-`, not starting with a digit.
pub fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn render(t: &Template, vars: &HashMap<String, String>) -> Result<String, MissingVar> {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let counter = AtomicU64::new(7);
        let mut ctx = RenderCtx {
            rng: &mut rng,
            counter: &counter,
            user: 3,
            iteration: 9,
            vars,
        };
        let mut out = String::new();
        t.render(&mut ctx, &mut out).map(|_| out)
    }

    #[test]
    fn renders_all_parts() {
        let t =
            Template::parse("/t/{{ task_id }}?n={{randint 5 5}}&c={{counter}}&u={{user}}").unwrap();
        let vars = HashMap::from([("task_id".to_string(), "abc".to_string())]);
        assert_eq!(render(&t, &vars).unwrap(), "/t/abc?n=5&c=7&u=3");
        let u = render(&Template::parse("{{uuid}}").unwrap(), &vars).unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(
            render(&Template::parse("{{nope}}").unwrap(), &vars),
            Err(MissingVar("nope".into()))
        );
    }

    #[test]
    fn an_unset_environment_variable_takes_its_default_and_without_one_is_an_error() {
        let vars = HashMap::new();
        let unset = "SCALEBENCH_TEMPLATE_TEST_SURELY_UNSET";
        let t = Template::parse(&format!("{{{{env {unset}:-/healthz}}}}")).unwrap();
        assert_eq!(render(&t, &vars).unwrap(), "/healthz");
        let err = Template::parse(&format!("{{{{env {unset}}}}}")).unwrap_err();
        assert!(err.contains("is not set"), "{err}");
        let home = std::env::var("PATH").unwrap();
        let t = Template::parse("{{env PATH:-/nowhere}}").unwrap();
        assert_eq!(render(&t, &vars).unwrap(), home);
    }

    #[test]
    fn parse_errors_are_clear() {
        assert!(
            Template::parse("{{randint 5 1}}")
                .unwrap_err()
                .contains("above")
        );
        assert!(
            Template::parse("{{randint x 1}}")
                .unwrap_err()
                .contains("usage")
        );
        assert!(Template::parse("a {{ b").unwrap_err().contains("unclosed"));
        assert!(
            Template::parse("{{what is this}}")
                .unwrap_err()
                .contains("unknown")
        );
        assert!(Template::parse("x }} y").is_err());
        assert!(Template::parse("static").unwrap().is_static());
    }
}
