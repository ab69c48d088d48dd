//! The in-memory task store: bounded, so a client that only creates tasks cannot grow the
//! process until the OOM killer steps in.
//!
//! At the bound the oldest task makes room by default ([`WhenFull::EvictOldest`]): load tests
//! create tasks for as long as they run (Artillery's and k6's CRUD flows create on every
//! iteration and rarely delete), and a benchmark workload whose own cap starts failing creates
//! midway confounds every success-rate table. [`WhenFull::Reject`] keeps the refusal (507) for
//! those who test how clients handle a full store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest accepted title, in characters (Unicode scalar values, as JSON Schema counts), as sent.
pub const MAX_TITLE_CHARS: usize = 200;

/// The OpenAPI `pattern` of a title: at least one character that is not ASCII whitespace
/// (`char::is_ascii_whitespace`: space, tab, LF, FF, CR), i.e. not empty once trimmed.
pub const TITLE_PATTERN: &str = "[^ \\t\\n\\f\\r]";

/// A stored task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Task {
    pub id: u64,
    pub title: String,
    pub done: bool,
}

/// What a create does when the store holds `capacity` tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum WhenFull {
    /// Remove the oldest task (the lowest id) to make room: every create succeeds.
    #[default]
    EvictOldest,
    /// Refuse the create (`POST /tasks` answers 507 `store_full`).
    Reject,
}

/// Why a task could not be stored.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("title must not be empty")]
    EmptyTitle,
    #[error("title is longer than {MAX_TITLE_CHARS} characters")]
    TitleTooLong,
    #[error("the task store is full ({0} tasks); delete some first")]
    Full(usize),
}

/// Tasks by id, ids increasing and never reused, so the lowest id is the oldest task and
/// eviction is the map's first entry (O(log n), no scan).
#[derive(Debug)]
pub struct TaskStore {
    capacity: usize,
    when_full: WhenFull,
    /// `workload_tasks_evicted_total` (a no-op counter unless [`TaskStore::counting_evictions`]).
    evicted: metrics::Counter,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    tasks: BTreeMap<u64, Task>,
}

impl TaskStore {
    pub fn new(capacity: usize, when_full: WhenFull) -> Self {
        Self {
            capacity,
            when_full,
            evicted: metrics::Counter::noop(),
            inner: Mutex::new(Inner {
                next_id: 1,
                tasks: BTreeMap::new(),
            }),
        }
    }

    /// Counts each eviction on `evicted`.
    pub fn counting_evictions(mut self, evicted: metrics::Counter) -> Self {
        self.evicted = evicted;
        self
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-updated (every update is one
        // insert or remove), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validates the title and stores it trimmed of ASCII whitespace.
    ///
    /// The rules are exactly what the OpenAPI document can state (`maxLength` on the title as
    /// sent, [`TITLE_PATTERN`]), so a schema-driven client never sees the server disagree with
    /// the document: the length counts the title as sent, and only the ASCII whitespace the
    /// pattern names is trimmed (JSON Schema's `\s` and Rust's Unicode whitespace differ).
    pub fn create(&self, title: &str, done: bool) -> Result<Task, StoreError> {
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(StoreError::TitleTooLong);
        }
        let title = title.trim_matches(|c: char| c.is_ascii_whitespace());
        if title.is_empty() {
            return Err(StoreError::EmptyTitle);
        }
        let mut inner = self.lock();
        while inner.tasks.len() >= self.capacity {
            match self.when_full {
                WhenFull::Reject => return Err(StoreError::Full(self.capacity)),
                WhenFull::EvictOldest => {
                    inner.tasks.pop_first();
                    self.evicted.increment(1);
                }
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let task = Task {
            id,
            title: title.to_string(),
            done,
        };
        inner.tasks.insert(id, task.clone());
        Ok(task)
    }

    pub fn get(&self, id: u64) -> Option<Task> {
        self.lock().tasks.get(&id).cloned()
    }

    pub fn delete(&self, id: u64) -> bool {
        self.lock().tasks.remove(&id).is_some()
    }

    /// A page in id order, and the total count.
    pub fn list(&self, offset: usize, limit: usize) -> (Vec<Task>, usize) {
        let inner = self.lock();
        let page = inner
            .tasks
            .values()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        (page, inner.tasks.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a counter handed to the store has counted.
    struct Evicted(std::sync::Arc<metrics::atomics::AtomicU64>);

    impl Evicted {
        fn get(&self) -> u64 {
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    #[test]
    fn create_get_delete() {
        let store = TaskStore::new(10, WhenFull::Reject);
        let t = store.create("  write tests ", false).unwrap();
        assert_eq!(t.title, "write tests");
        assert_eq!(store.get(t.id), Some(t.clone()));
        assert!(store.delete(t.id));
        assert!(!store.delete(t.id));
        assert_eq!(store.get(t.id), None);
    }

    #[test]
    fn a_full_store_evicts_its_oldest_task_by_default() {
        let evicted = std::sync::Arc::new(metrics::atomics::AtomicU64::new(0));
        let store = TaskStore::new(3, WhenFull::default())
            .counting_evictions(metrics::Counter::from_arc(evicted.clone()));
        let evicted = Evicted(evicted);
        let ids: Vec<u64> = (0..5)
            .map(|i| store.create(&format!("t{i}"), false).unwrap().id)
            .collect();
        let (page, total) = store.list(0, 10);
        assert_eq!(total, 3, "never more than the capacity");
        assert_eq!(
            page.iter().map(|t| t.id).collect::<Vec<_>>(),
            ids[2..],
            "the two oldest made room"
        );
        assert_eq!(store.get(ids[0]), None);
        assert_eq!(evicted.get(), 2);
        // a delete frees a place: the next create evicts nothing
        store.delete(ids[3]);
        store.create("t5", false).unwrap();
        assert!(store.get(ids[2]).is_some());
        assert_eq!(evicted.get(), 2);
    }

    #[test]
    fn reject_refuses_creates_when_full_until_a_delete() {
        let store = TaskStore::new(2, WhenFull::Reject);
        let a = store.create("a", false).unwrap();
        store.create("b", true).unwrap();
        assert_eq!(store.create("c", false), Err(StoreError::Full(2)));
        store.delete(a.id);
        let c = store.create("c", false).unwrap();
        assert_eq!(c.id, 3, "ids are never reused");
    }

    #[test]
    fn titles_are_validated() {
        let store = TaskStore::new(2, WhenFull::Reject);
        assert_eq!(store.create("   ", false), Err(StoreError::EmptyTitle));
        let long = "é".repeat(MAX_TITLE_CHARS + 1);
        assert_eq!(store.create(&long, false), Err(StoreError::TitleTooLong));
        assert!(store.create(&"é".repeat(MAX_TITLE_CHARS), false).is_ok());
        // The length counts the title as sent, padding included.
        let padded = format!("a{}", " ".repeat(MAX_TITLE_CHARS));
        assert_eq!(store.create(&padded, false), Err(StoreError::TitleTooLong));
        // Only ASCII whitespace is trimmed (what TITLE_PATTERN names).
        assert_eq!(
            store.create(" \t\n\x0c\r", false),
            Err(StoreError::EmptyTitle)
        );
        assert_eq!(store.create("\u{a0}", false).unwrap().title, "\u{a0}");
    }

    #[test]
    fn pagination() {
        let store = TaskStore::new(100, WhenFull::default());
        for i in 0..10 {
            store.create(&format!("t{i}"), false).unwrap();
        }
        let (page, total) = store.list(3, 4);
        assert_eq!(total, 10);
        assert_eq!(
            page.iter().map(|t| t.title.as_str()).collect::<Vec<_>>(),
            ["t3", "t4", "t5", "t6"]
        );
        assert!(store.list(20, 5).0.is_empty());
    }
}
