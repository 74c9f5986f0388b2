//! Settings: command-line flag, then environment variable (both via clap),
//! then the TOML config file, then the default.

use crate::DbArgs;
use anyhow::{Context, Result, bail};
use incasso_store::Store;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }
}

pub struct Settings {
    pub database_url: String,
    pub bind: String,
    pub data_dir: PathBuf,
}

impl Settings {
    pub fn resolve(db: &DbArgs, bind: Option<String>, file: &FileConfig) -> Result<Settings> {
        let data_dir = db
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("./incasso-data"));
        let database_url = db
            .database_url
            .clone()
            .or_else(|| file.database_url.clone())
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("incasso.db").display()));
        let bind = bind
            .or_else(|| file.bind.clone())
            .unwrap_or_else(|| "127.0.0.1:8080".to_string());
        if incasso_store::Dialect::from_url(&database_url).is_err() {
            bail!("database URL must start with sqlite:, postgres:// or postgresql://");
        }
        Ok(Settings {
            database_url,
            bind,
            data_dir,
        })
    }

    /// Creates the data dir, connects and migrates.
    pub async fn open_store(&self) -> Result<Store> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data dir {}", self.data_dir.display()))?;
        Store::connect(&self.database_url)
            .await
            .with_context(|| format!("opening database {}", redact(&self.database_url)))
    }
}

/// A URL safe for logs: the password of a PostgreSQL URL is masked.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_and_defaults_derive_from_data_dir() {
        let file = FileConfig {
            database_url: None,
            bind: Some("0.0.0.0:9000".into()),
            data_dir: Some("/var/lib/incasso".into()),
        };
        let s = Settings::resolve(&DbArgs::default(), None, &file).unwrap();
        assert_eq!(s.bind, "0.0.0.0:9000");
        assert_eq!(s.database_url, "sqlite:///var/lib/incasso/incasso.db");
        let flags = DbArgs {
            database_url: Some("postgres://u:p@h/db".into()),
            data_dir: None,
        };
        let s = Settings::resolve(&flags, Some("127.0.0.1:1".into()), &file).unwrap();
        assert_eq!(s.database_url, "postgres://u:p@h/db");
        assert_eq!(s.bind, "127.0.0.1:1");
    }

    #[test]
    fn unknown_scheme_is_refused() {
        let flags = DbArgs {
            database_url: Some("sqlit://x.db".into()),
            data_dir: None,
        };
        assert!(Settings::resolve(&flags, None, &FileConfig::default()).is_err());
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
    }
}
