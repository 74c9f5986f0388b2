//! Finding and asking the schemathesis that `scripts/test.sh` installs,
//! shared by the conformance tests (`gpd_conformance`, `api_conformance`).

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
