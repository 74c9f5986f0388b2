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
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// Where `serve` listens, and the URL it is reached at, from the flags.
#[derive(Debug, Default)]
pub struct Listen {
    pub bind: Option<String>,
    pub public_url: Option<String>,
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
    /// As configured; see [`Settings::public_url`] for the default.
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
}

impl Settings {
    pub fn resolve(db: &DbArgs, listen: Listen, file: &FileConfig) -> Result<Settings> {
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
        let bind = listen
            .bind
            .or_else(|| file.bind.clone())
            .unwrap_or_else(|| "127.0.0.1:8080".to_string());
        if incasso_store::Dialect::from_url(&database_url).is_err() {
            bail!("database URL must start with sqlite:, postgres:// or postgresql://");
        }
        let public_url = listen.public_url.or_else(|| file.public_url.clone());
        if let Some(url) = &public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("public URL must start with http:// or https:// (got '{url}')");
        }
        Ok(Settings {
            database_url,
            bind,
            public_url,
            data_dir,
        })
    }

    /// The base of every absolute URL incasso gives out: the configured
    /// one, else `http://` and the address actually bound.
    pub fn public_url(&self, bound: std::net::SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_string()
    }

    /// Creates the data dir, connects and migrates, with the key that
    /// seals the stations' credentials (`INCASSO_SECRET_KEY`, else
    /// `<data-dir>/secret.key`, created at first start with mode 0600; the
    /// previous key during a rotation in `INCASSO_SECRET_KEY_PREVIOUS`).
    pub async fn open_store(&self) -> Result<Store> {
        use incasso_store::secrets::{Keyring, SecretKey};
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data dir {}", self.data_dir.display()))?;
        let current = SecretKey::load_or_create(&self.data_dir.join("secret.key"))?;
        let previous = match std::env::var("INCASSO_SECRET_KEY_PREVIOUS") {
            Ok(k) if !k.trim().is_empty() => Some(SecretKey::from_hex(&k)?),
            _ => None,
        };
        let store = Store::connect(&self.database_url)
            .await
            .with_context(|| format!("opening database {}", redact(&self.database_url)))?
            .with_keyring(Keyring {
                current: Some(current),
                previous,
            });
        let resealed = store.reseal_secrets().await.context("sealing secrets")?;
        if resealed > 0 {
            tracing::info!(
                stations = resealed,
                "station credentials sealed with the current key"
            );
        }
        Ok(store)
    }
}

/// `url` with its port replaced by `port`: the demo simulator is reached
/// on the same host as incasso.
pub fn same_host(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.rsplit_once(':') {
        // An IPv6 literal without a port ends with ']'.
        Some((host, p)) if !p.ends_with(']') => host,
        _ => authority,
    };
    format!("{scheme}://{host}:{port}")
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
            public_url: None,
            data_dir: Some("/var/lib/incasso".into()),
        };
        let s = Settings::resolve(&DbArgs::default(), Listen::default(), &file).unwrap();
        assert_eq!(s.bind, "0.0.0.0:9000");
        assert_eq!(
            s.public_url("0.0.0.0:9000".parse().unwrap()),
            "http://0.0.0.0:9000"
        );
        assert_eq!(s.database_url, "sqlite:///var/lib/incasso/incasso.db");
        let flags = DbArgs {
            database_url: Some("postgres://u:p@h/db".into()),
            data_dir: None,
        };
        let listen = Listen {
            bind: Some("127.0.0.1:1".into()),
            public_url: Some("https://pagamenti.example.it/".into()),
        };
        let s = Settings::resolve(&flags, listen, &file).unwrap();
        assert_eq!(s.database_url, "postgres://u:p@h/db");
        assert_eq!(s.bind, "127.0.0.1:1");
        assert_eq!(
            s.public_url("127.0.0.1:1".parse().unwrap()),
            "https://pagamenti.example.it"
        );
    }

    #[test]
    fn a_public_url_must_be_http() {
        let listen = Listen {
            bind: None,
            public_url: Some("pagamenti.example.it".into()),
        };
        let err = Settings::resolve(&DbArgs::default(), listen, &FileConfig::default());
        assert!(err.is_err());
    }

    #[test]
    fn the_simulator_shares_the_public_host() {
        assert_eq!(
            same_host("http://10.0.0.5:8081", 40000),
            "http://10.0.0.5:40000"
        );
        assert_eq!(
            same_host("https://pay.example.it/", 40000),
            "https://pay.example.it:40000"
        );
        assert_eq!(same_host("http://[::1]:8081", 9), "http://[::1]:9");
    }

    #[test]
    fn unknown_scheme_is_refused() {
        let flags = DbArgs {
            database_url: Some("sqlit://x.db".into()),
            data_dir: None,
        };
        assert!(Settings::resolve(&flags, Listen::default(), &FileConfig::default()).is_err());
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
