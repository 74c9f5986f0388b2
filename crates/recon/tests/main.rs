//! The crate's integration tests, one module per file, built as one test
//! binary rather than one per file: each binary links the whole stack, and
//! their number filled a CI machine's disk (see crates/server/tests/main.rs).

mod causale_props;
mod fdr;
mod reversale;
mod treasury;
