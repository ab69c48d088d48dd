//! The request durations as HDR histograms per endpoint and outcome, kept only when remote write
//! exports native histograms (`--remote-write-histograms native|both`): the classic buckets of the
//! exposition (15 fixed bounds) are far too coarse to make the exponential buckets from.
//!
//! Workers record into one of a few mutex-protected shards, each worker always the same one, so a
//! request takes an uncontended lock; a push merges the shards. Histograms are made on first use,
//! so endpoints and outcomes that never happen cost nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use hdrhistogram::Histogram;

use crate::model::hist;

/// Which histograms of the request durations a remote write carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistogramExport {
    /// Native histograms only (no `_bucket`, `_sum` or `_count` series of the durations).
    Native,
    /// The classic `_bucket`, `_sum` and `_count` series only, as the exposition has them.
    Classic,
    /// Both: the dashboards read the native series where the receiver keeps them.
    Both,
}

impl HistogramExport {
    pub fn native(self) -> bool {
        matches!(self, Self::Native | Self::Both)
    }

    pub fn classic(self) -> bool {
        matches!(self, Self::Classic | Self::Both)
    }
}

/// Most shards: more workers than this share them.
const MAX_SHARDS: usize = 8;

/// Durations per (endpoint, outcome), sharded by worker.
#[derive(Debug)]
pub struct NativeLatency {
    shards: Vec<Mutex<Vec<Option<Histogram<u64>>>>>,
    next_shard: AtomicUsize,
}

/// The slot of an endpoint's outcome: success and failure side by side.
fn slot(endpoint: usize, success: bool) -> usize {
    endpoint * 2 + usize::from(!success)
}

impl NativeLatency {
    pub fn new() -> Self {
        let n = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(MAX_SHARDS);
        Self {
            shards: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
            next_shard: AtomicUsize::new(0),
        }
    }

    /// The shard a new worker records into (round robin).
    pub fn assign_shard(&self) -> usize {
        self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len()
    }

    /// Records one request of `endpoint` that took `us` microseconds.
    pub fn record(&self, shard: usize, endpoint: usize, success: bool, us: u64) {
        let mut slots = self.shards[shard % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let i = slot(endpoint, success);
        if slots.len() <= i {
            slots.resize_with(i + 1, || None);
        }
        hist::record(slots[i].get_or_insert_with(hist::new_small_hist), us);
    }

    /// Every (endpoint, success) with at least one request, its durations merged across shards.
    pub fn snapshot(&self) -> Vec<(usize, bool, Histogram<u64>)> {
        let mut merged: Vec<Option<Histogram<u64>>> = Vec::new();
        for shard in &self.shards {
            let slots = shard.lock().unwrap_or_else(|p| p.into_inner());
            if merged.len() < slots.len() {
                merged.resize_with(slots.len(), || None);
            }
            for (i, h) in slots.iter().enumerate() {
                if let Some(h) = h {
                    // Same bounds on both sides: adding cannot fail.
                    let _ = merged[i].get_or_insert_with(hist::new_small_hist).add(h);
                }
            }
        }
        merged
            .into_iter()
            .enumerate()
            .filter_map(|(i, h)| h.filter(|h| !h.is_empty()).map(|h| (i / 2, i % 2 == 0, h)))
            .collect()
    }
}

impl Default for NativeLatency {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_merge_into_one_histogram_per_endpoint_and_outcome() {
        let n = NativeLatency::new();
        let (a, b) = (n.assign_shard(), n.assign_shard());
        n.record(a, 1, true, 1_000);
        n.record(b, 1, true, 3_000);
        n.record(b, 1, false, 500_000);
        n.record(a, 0, true, 42);
        let snap = n.snapshot();
        let got: Vec<(usize, bool, u64)> =
            snap.iter().map(|(e, ok, h)| (*e, *ok, h.len())).collect();
        assert_eq!(got, vec![(0, true, 1), (1, true, 2), (1, false, 1)]);
        let (_, _, h) = &snap[1];
        assert_eq!(
            (h.min(), h.highest_equivalent(h.max())),
            (1_000, h.highest_equivalent(3_000))
        );
    }

    #[test]
    fn nothing_recorded_is_an_empty_snapshot() {
        assert!(NativeLatency::new().snapshot().is_empty());
    }

    #[test]
    fn the_export_modes_say_what_they_carry() {
        use HistogramExport::*;
        assert_eq!(
            [Native, Classic, Both].map(|m| (m.native(), m.classic())),
            [(true, false), (false, true), (true, true)]
        );
    }
}
