//! The crate's integration tests, one module per file, built as one test
//! binary rather than one per file: each binary links the whole stack, and
//! their number filled a CI machine's disk (see crates/server/tests/main.rs).

mod desk;
mod digitpos;
mod notify;
mod notify_channels;
mod operators;
mod pos;
mod regressions;
mod upload_resume;
mod webhooks;
