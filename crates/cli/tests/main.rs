//! The crate's integration tests, one module per file, built as one test
//! binary rather than one per file: each binary links the whole stack, and
//! their number filled a CI machine's disk (see crates/server/tests/main.rs).

#[allow(dead_code)]
mod common {
    // The server's browser fixtures, shared rather than copied.
    #[path = "../../../server/tests/common/browser.rs"]
    pub mod browser;
    pub mod faults;
    #[path = "../../../server/tests/common/gpd.rs"]
    pub mod gpd;
    #[path = "../../../server/tests/common/page_check.rs"]
    pub mod page_check;
    pub mod process;
}

mod backoffice_clerk;
mod backup;
mod bench_digitpos;
mod bench_notify;
mod bench_portal;
mod cli;
mod export;
mod faults_disk;
mod faults_kill;
mod faults_postgres;
mod faults_supply;
mod logs;
mod notify_kill;
mod portal_citizen;
mod portal_receipts_demo;
mod two_processes;
mod webhooks_kill;
