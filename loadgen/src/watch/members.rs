//! The objects of one watch stream that belong to the target, by name, each as its view.
//!
//! Why a set even for one Deployment: a Knative Configuration has one Deployment per revision
//! (two while a new one rolls out) and a PodAutoscaler beside each, and a Deployment target's
//! HPA is one of the namespace's; one set, fed by watcher events and re-listed on a relist,
//! serves them all.

use std::collections::{BTreeMap, BTreeSet};

use kube::runtime::watcher::Event;

/// Members by name, with relist bookkeeping.
#[derive(Debug)]
pub(super) struct Members<V> {
    pub(super) views: BTreeMap<String, V>,
    seen_in_relist: BTreeSet<String>,
    /// The first list is complete (or the stream was given up on).
    pub(super) listed: bool,
}

impl<V> Default for Members<V> {
    fn default() -> Self {
        Self {
            views: BTreeMap::new(),
            seen_in_relist: BTreeSet::new(),
            listed: false,
        }
    }
}

impl<V> Members<V> {
    /// Applies one event of `(name, view)` pairs (`None`: the object is not, or no longer, one of
    /// ours); returns true when the members' views may have changed.
    pub(super) fn apply(&mut self, event: Event<(String, Option<V>)>) -> bool {
        match event {
            Event::Init => {
                self.seen_in_relist.clear();
                false
            }
            Event::InitApply((name, view)) => {
                self.seen_in_relist.insert(name.clone());
                self.upsert(name, view);
                false
            }
            Event::InitDone => {
                let seen = std::mem::take(&mut self.seen_in_relist);
                self.views.retain(|name, _| seen.contains(name));
                self.listed = true;
                true
            }
            Event::Apply((name, view)) => {
                self.upsert(name, view);
                true
            }
            Event::Delete((name, _)) => self.views.remove(&name).is_some(),
        }
    }

    fn upsert(&mut self, name: String, view: Option<V>) {
        match view {
            Some(v) => {
                self.views.insert(name, v);
            }
            // Its target or labels may have been edited away from ours.
            None => {
                self.views.remove(&name);
            }
        }
    }

    /// The members' names, comma-separated, if there are any.
    pub(super) fn names(&self) -> Option<String> {
        (!self.views.is_empty()).then(|| {
            self.views
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// Maps a watcher event of objects to one of `(name, view)` pairs.
pub(super) fn map_event<K, V>(
    event: Event<K>,
    f: impl Fn(&K) -> (String, Option<V>),
) -> Event<(String, Option<V>)> {
    match event {
        Event::Init => Event::Init,
        Event::InitApply(k) => Event::InitApply(f(&k)),
        Event::InitDone => Event::InitDone,
        Event::Apply(k) => Event::Apply(f(&k)),
        Event::Delete(k) => Event::Delete(f(&k)),
    }
}
