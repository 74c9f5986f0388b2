//! The crate's integration tests, one module per file, built as one test
//! binary rather than one per file: each binary links the whole stack, and
//! their number filled a CI machine's disk (see crates/server/tests/main.rs).

mod events;
mod job_turns;
mod notify;
mod store;
