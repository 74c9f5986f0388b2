//! Test support shared by the crates' integration tests.
//!
//! Every storage and API test runs once per backend: SQLite always (a fresh
//! temporary file: an in-memory SQLite would give each pooled connection its
//! own database), PostgreSQL when `INCASSO_TEST_PG_URL` names a server (a
//! fresh randomly named database each time). `INCASSO_REQUIRE_PG=1`, set by
//! the project's test command, turns a missing PostgreSQL into a failure
//! instead of a skip, so CI can never pass on SQLite alone by accident.

use std::path::PathBuf;

pub mod recon;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to run on, SQLite first.
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    if std::env::var("INCASSO_TEST_PG_URL").is_ok_and(|u| !u.is_empty()) {
        v.push(Backend::Postgres);
    } else if std::env::var("INCASSO_REQUIRE_PG").is_ok_and(|v| v == "1") {
        panic!("INCASSO_REQUIRE_PG=1 but INCASSO_TEST_PG_URL is not set");
    } else {
        eprintln!("note: INCASSO_TEST_PG_URL not set, PostgreSQL tests skipped");
    }
    v
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A URL of a new, empty database on `backend`.
pub async fn fresh_database_url(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("incasso-test-{}", random_suffix()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!("sqlite://{}", dir.join("test.db").display())
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let admin_url = std::env::var("INCASSO_TEST_PG_URL").expect("INCASSO_TEST_PG_URL");
            let name = format!("incasso_test_{}", random_suffix());
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connecting to INCASSO_TEST_PG_URL");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("creating test database");
            let _ = conn.close().await;
            replace_database(&admin_url, &name)
        }
    }
}

/// The same server URL with another database name.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..host_part_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The specification files tests read: copies of the shared specification
/// folder's schemas and samples, in the same layout (`crates/testkit/spec`),
/// so that a clean checkout tests on its own.
pub fn spec_dir() -> Option<PathBuf> {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("spec")
        .canonicalize()
        .ok()
}

/// Validates XML documents with xmllint against a schema of the spec
/// folder (`xsd`, relative to [`spec_dir`]); panics with xmllint's words
/// and the first document when one fails.
pub fn assert_xsd_valid(xsd: &str, documents: &[&str]) {
    let spec = spec_dir().expect("crates/testkit/spec");
    let dir = std::env::temp_dir().join(format!("incasso-xsd-{}", random_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let files: Vec<PathBuf> = documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let f = dir.join(format!("document-{i}.xml"));
            std::fs::write(&f, d).expect("writing a document");
            f
        })
        .collect();
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(spec.join(xsd))
        .args(&files)
        .output()
        .expect("xmllint is needed (Debian package libxml2-utils; scripts/test.sh installs it)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{xsd}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        documents.first().unwrap_or(&"")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database("postgres://u:p@h:5432/postgres", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h", "x"), "postgres://h/x");
    }
}
