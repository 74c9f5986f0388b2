//! What the conformance tests (`gpd_conformance`, `api_conformance`)
//! share: finding and asking the schemathesis that `scripts/test.sh`
//! installs, and incasso served on a port of its own with a key (which
//! `gpd_v2` calls too).

use std::path::{Path, PathBuf};

/// The schemathesis executable: `INCASSO_SCHEMATHESIS` (set by
/// `scripts/test.sh`), else the newest virtual environment that script
/// made under the user's cache, else `schemathesis` on the PATH.
pub fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("INCASSO_SCHEMATHESIS").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    let installed = cache
        .and_then(|c| std::fs::read_dir(c.join("incasso")).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("schemathesis-"))
        .filter_map(|e| {
            let when = std::fs::metadata(e.path().join("installed"))
                .and_then(|m| m.modified())
                .ok()?;
            Some((when, e.path().join("bin").join("schemathesis")))
        })
        .max();
    installed
        .map(|(_, exe)| exe)
        .unwrap_or_else(|| PathBuf::from("schemathesis"))
}

/// `schemathesis --version`, or why it cannot run.
pub async fn version_of(exe: &Path) -> Result<String, String> {
    let out = tokio::process::Command::new(exe)
        .arg("--version")
        .output()
        .await
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// incasso serving `store` on a port of its own; `send` calls it with
/// `key` under `prefix` (`/gpd/v1`, or `""` for whole paths).
pub struct Server {
    pub base: String,
    pub key: String,
    prefix: &'static str,
    pub client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn serve(store: incasso_store::Store, key: String, prefix: &'static str) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(incasso_server::serve_with_listener(
        listener,
        store,
        async {
            let _ = stopped.await;
        },
    ));
    incasso_pagopa::connector::install_crypto_provider();
    Server {
        base,
        key,
        prefix,
        client: reqwest::Client::new(),
        _stop: stop,
    }
}

/// An answer as it came: status, headers and body (`json` is
/// `Value::Null` when the body is empty or not JSON).
pub struct Answer {
    pub status: reqwest::StatusCode,
    // Read by the tests that check headers, not by every one.
    #[allow(dead_code)]
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: serde_json::Value,
}

impl Server {
    /// Any answer to `method path` (under the prefix), with `key` if any.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{}{}{path}", self.base, self.prefix));
        if let Some(key) = key {
            req = req.header("Ocp-Apim-Subscription-Key", key);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Answer {
            status,
            headers,
            text,
            json,
        }
    }

    /// The JSON answer of a call that must succeed, with the server's key.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        let answer = self.call(method.clone(), path, Some(&self.key), body).await;
        assert!(
            answer.status.is_success(),
            "{method} {path}: {} {}",
            answer.status,
            answer.text
        );
        answer.json
    }
}
