//! The workload under test.
