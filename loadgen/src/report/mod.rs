//! The run's outputs: the [`crate::model`] report rendered for a terminal ([`summary`], a capacity
//! search's steps in [`capacity`]), a comparison table ([`compare`], laid out to the terminal's
//! width by [`fit`]) and HTML pages ([`html`], one
//! file per section beside its terminal twin: `capacity.rs` and `html/capacity.rs`,
//! `compare.rs` and `html/compare.rs`), and the exact merge of several workers' reports
//! ([`merge`], with the per-phase rows of [`phases`]).

pub mod capacity;
pub mod compare;
pub mod fit;
pub mod html;
pub mod merge;
pub mod phases;
pub mod summary;
