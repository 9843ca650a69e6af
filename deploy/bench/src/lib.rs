//! Shared pieces of the benchmark programs: flag parsing, workload generators, and reading
//! what the server left on disk and in memory.

pub mod flags;
pub mod meters;
pub mod results;
pub mod spawn;
pub mod sys;
pub mod tsbs;
