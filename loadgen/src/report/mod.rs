//! The run's outputs: the [`crate::model`] report rendered for a terminal ([`summary`]), a
//! comparison table ([`compare`]) and HTML pages ([`html`]), and the exact merge of several
//! workers' reports ([`merge`], with the per-phase rows of [`phases`]).

pub mod compare;
pub mod html;
pub mod merge;
pub mod phases;
pub mod summary;
