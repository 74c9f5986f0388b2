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
    /// SPID/CIE sign-in for operators, through an OpenID Connect identity
    /// proxy (`[spid]` with `issuer`, `client_id`, `client_secret`).
    pub spid: Option<SpidFile>,
    /// The SMTP server of incasso's e-mail (receipts), e.g.
    /// `smtp://user:password@mail.example.it:587?tls=required`.
    pub smtp_url: Option<String>,
    /// The sender of incasso's e-mail.
    pub mail_from: Option<String>,
    /// Proxies in front of incasso whose `X-Forwarded-For` names the
    /// citizen portal's client: addresses or CIDR ranges, comma-separated.
    pub trusted_proxy: Option<String>,
    /// The citizen portal's per-client limits, per minute / at once, e.g.
    /// `lookup=30/20,create=5/3`.
    pub portal_limits: Option<String>,
    /// pagoPA's POS gateway, for the desks' card terminals (`[pos]`).
    pub pos: Option<PosFile>,
    /// The pagoPA Node's addresses, the only callers of `paForNode`
    /// (CIDR ranges, comma-separated).
    pub node_allow: Option<String>,
    /// The key the Node sends in `Ocp-Apim-Subscription-Key`.
    pub node_key: Option<String>,
}

/// The `[pos]` table of the config file: where pagoPA's POS gateway is
/// (`https://api.platform.pagopa.it/pos-layer-service`), its subscription
/// key, and the PSP of the Ente's terminals.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PosFile {
    pub gateway_url: Option<String>,
    pub subscription_key: Option<String>,
    pub psp_id: Option<String>,
    pub psp_broker: Option<String>,
    pub psp_channel: Option<String>,
    pub timeout_ms: Option<u64>,
}

/// The `[spid]` table of the config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpidFile {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
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
    /// The SPID/CIE identity proxy, when configured.
    pub spid: Option<incasso_app::spid::SpidSettings>,
    /// The SMTP server (from the config file; `serve`'s flags override).
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    /// The portal's limits and trusted proxies (from the config file;
    /// `serve`'s flags override, through [`portal_limits`]).
    pub limits: incasso_server::portal::limit::LimitSettings,
    /// pagoPA's POS gateway, when configured.
    pub pos: Option<incasso_pagopa::pos::PosGatewaySettings>,
    /// Who may call `paForNode`.
    pub node_access: incasso_server::node_access::NodeAccess,
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
        let spid = spid_settings(
            |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()),
            file.spid.clone().unwrap_or_default(),
        )?;
        let pos = pos_settings(
            |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()),
            file.pos.clone().unwrap_or_default(),
        )?;
        let smtp_url = file.smtp_url.clone().filter(|u| !u.trim().is_empty());
        check_smtp_url(smtp_url.as_deref())?;
        Ok(Settings {
            database_url,
            bind,
            public_url,
            data_dir,
            spid,
            smtp_url,
            mail_from: file.mail_from.clone().filter(|f| !f.trim().is_empty()),
            limits: portal_limits(
                Default::default(),
                file.trusted_proxy.as_deref(),
                file.portal_limits.as_deref(),
            )?,
            pos,
            node_access: node_access(file.node_allow.as_deref(), file.node_key.as_deref())?,
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

/// An SMTP URL incasso can use: `smtp://` (plain, or STARTTLS with
/// `?tls=required` / `?tls=opportunistic`) or `smtps://` (TLS from the
/// start), with a host.
pub fn check_smtp_url(url: Option<&str>) -> Result<()> {
    let Some(url) = url else {
        return Ok(());
    };
    let rest = url
        .strip_prefix("smtp://")
        .or_else(|| url.strip_prefix("smtps://"));
    let host = rest
        .map(|r| r.rsplit('@').next().unwrap_or(r))
        .and_then(|r| r.split(['/', ':', '?']).next())
        .filter(|h| !h.is_empty());
    if host.is_none() {
        bail!(
            "SMTP URL must be smtp://host[:port] or smtps://host[:port] (user and password optional)"
        );
    }
    Ok(())
}

/// SPID/CIE's settings: each of `INCASSO_SPID_ISSUER`,
/// `INCASSO_SPID_CLIENT_ID` and `INCASSO_SPID_CLIENT_SECRET` (read through
/// `env`), else the config file's `[spid]` table; all three or none.
fn spid_settings(
    env: impl Fn(&str) -> Option<String>,
    file: SpidFile,
) -> Result<Option<incasso_app::spid::SpidSettings>> {
    let issuer = env("INCASSO_SPID_ISSUER").or(file.issuer);
    let client_id = env("INCASSO_SPID_CLIENT_ID").or(file.client_id);
    let client_secret = env("INCASSO_SPID_CLIENT_SECRET").or(file.client_secret);
    match (issuer, client_id, client_secret) {
        (None, None, None) => Ok(None),
        (Some(issuer), Some(client_id), Some(client_secret)) => {
            if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
                bail!("SPID/CIE: the issuer must be an http:// or https:// URL (got '{issuer}')");
            }
            Ok(Some(incasso_app::spid::SpidSettings {
                issuer: issuer.trim_end_matches('/').to_string(),
                client_id,
                client_secret,
            }))
        }
        _ => bail!(
            "SPID/CIE: issuer, client_id and client_secret go together \
             (INCASSO_SPID_ISSUER, INCASSO_SPID_CLIENT_ID, INCASSO_SPID_CLIENT_SECRET or [spid] in the config file)"
        ),
    }
}

/// The POS gateway's settings: each of `INCASSO_POS_GATEWAY_URL`,
/// `INCASSO_POS_SUBSCRIPTION_KEY`, `INCASSO_POS_PSP_ID`,
/// `INCASSO_POS_PSP_BROKER` and `INCASSO_POS_PSP_CHANNEL` (read through
/// `env`), else the config file's `[pos]` table. Without a URL there is no
/// POS; with one, the PSP's three codes are required.
fn pos_settings(
    env: impl Fn(&str) -> Option<String>,
    file: PosFile,
) -> Result<Option<incasso_pagopa::pos::PosGatewaySettings>> {
    let Some(url) = env("INCASSO_POS_GATEWAY_URL").or(file.gateway_url) else {
        return Ok(None);
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        bail!("POS gateway: the URL must be http:// or https:// (got '{url}')");
    }
    let need = |name: &str, value: Option<String>| {
        env(name)
            .or(value)
            .ok_or_else(|| anyhow::anyhow!("POS gateway: {name} (or [pos] in the config file) is required with the gateway's URL"))
    };
    let psp = incasso_pagopa::pos::PspInfo {
        id: need("INCASSO_POS_PSP_ID", file.psp_id)?,
        broker: need("INCASSO_POS_PSP_BROKER", file.psp_broker)?,
        channel: need("INCASSO_POS_PSP_CHANNEL", file.psp_channel)?,
    };
    Ok(Some(incasso_pagopa::pos::PosGatewaySettings {
        url: url.trim_end_matches('/').to_string(),
        subscription_key: env("INCASSO_POS_SUBSCRIPTION_KEY").or(file.subscription_key),
        psp,
        timeout_ms: file.timeout_ms.unwrap_or(10_000),
    }))
}

/// `limits` with the trusted proxies and the rates given, where given
/// (`--trusted-proxy` / `INCASSO_TRUSTED_PROXY`, `--portal-limits` /
/// `INCASSO_PORTAL_LIMITS`, or the config file's `trusted_proxy` and
/// `portal_limits`). Without a trusted proxy the connection's peer is the
/// client: behind a reverse proxy every citizen would then share one
/// limit, so a deployment behind one names it.
pub fn portal_limits(
    mut limits: incasso_server::portal::limit::LimitSettings,
    trusted_proxy: Option<&str>,
    rates: Option<&str>,
) -> Result<incasso_server::portal::limit::LimitSettings> {
    if let Some(proxies) = trusted_proxy.filter(|p| !p.trim().is_empty()) {
        limits.set_trusted_proxies(proxies)?;
    }
    if let Some(rates) = rates.filter(|r| !r.trim().is_empty()) {
        limits.set_rates(rates)?;
    }
    Ok(limits)
}

/// Who may call `paForNode`: the Node's addresses and key, either empty
/// for none asked.
pub fn node_access(
    allow: Option<&str>,
    key: Option<&str>,
) -> Result<incasso_server::node_access::NodeAccess> {
    incasso_server::node_access::NodeAccess::new(allow.unwrap_or(""), key.unwrap_or(""))
        .map_err(|e| anyhow::anyhow!("node_allow: {e}"))
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
            spid: None,
            smtp_url: None,
            mail_from: None,
            trusted_proxy: None,
            portal_limits: None,
            pos: None,
            node_allow: None,
            node_key: None,
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
    fn smtp_urls_name_a_host_with_smtp_or_smtps() {
        for good in [
            "smtp://127.0.0.1:2525",
            "smtps://user:pass@mail.example.it:465",
            "smtp://mail.example.it:587?tls=required",
        ] {
            assert!(check_smtp_url(Some(good)).is_ok(), "{good}");
        }
        for bad in ["http://mail.example.it", "smtp://", "mail.example.it:25"] {
            assert!(check_smtp_url(Some(bad)).is_err(), "{bad}");
        }
        assert!(check_smtp_url(None).is_ok());
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
    fn spid_settings_come_whole_from_env_or_file() {
        let none = |_: &str| None;
        assert!(spid_settings(none, SpidFile::default()).unwrap().is_none());
        let file = SpidFile {
            issuer: Some("https://proxy.example.it/".into()),
            client_id: Some("incasso".into()),
            client_secret: Some("segreto".into()),
        };
        let s = spid_settings(none, file.clone()).unwrap().unwrap();
        assert_eq!(s.issuer, "https://proxy.example.it");
        let env = |name: &str| (name == "INCASSO_SPID_CLIENT_SECRET").then(|| "altro".to_string());
        assert_eq!(
            spid_settings(env, file).unwrap().unwrap().client_secret,
            "altro"
        );
        let half = SpidFile {
            issuer: Some("https://proxy.example.it".into()),
            ..SpidFile::default()
        };
        assert!(spid_settings(none, half).is_err());
        let bad = SpidFile {
            issuer: Some("proxy.example.it".into()),
            client_id: Some("a".into()),
            client_secret: Some("b".into()),
        };
        assert!(spid_settings(none, bad).is_err());
    }

    #[test]
    fn portal_limits_come_from_flags_or_file_and_bad_ones_are_refused() {
        let file = FileConfig {
            trusted_proxy: Some("10.0.0.0/8".into()),
            portal_limits: Some("lookup=60/30".into()),
            ..FileConfig::default()
        };
        let s = Settings::resolve(&DbArgs::default(), Listen::default(), &file).unwrap();
        assert_eq!(s.limits.lookup.per_minute, 60);
        assert_eq!(
            s.limits.create,
            incasso_server::portal::limit::LimitSettings::default().create
        );
        assert_eq!(s.limits.trusted_proxies.len(), 1);
        // The flags override the file's; an empty one changes nothing.
        let l = portal_limits(s.limits.clone(), Some("127.0.0.1, ::1"), Some("")).unwrap();
        assert_eq!(l.trusted_proxies.len(), 2);
        assert_eq!(l.lookup.per_minute, 60);
        assert!(portal_limits(Default::default(), Some("proxy.local"), None).is_err());
        assert!(portal_limits(Default::default(), None, Some("lookup=0/1")).is_err());
        let bad = FileConfig {
            portal_limits: Some("lookup=many".into()),
            ..FileConfig::default()
        };
        assert!(Settings::resolve(&DbArgs::default(), Listen::default(), &bad).is_err());
    }

    #[test]
    fn the_pos_gateway_comes_with_its_psp_or_not_at_all() {
        let none = |_: &str| None;
        assert!(pos_settings(none, PosFile::default()).unwrap().is_none());
        let file = PosFile {
            gateway_url: Some("https://api.platform.pagopa.it/pos-layer-service/".into()),
            subscription_key: Some("chiave".into()),
            psp_id: Some("PSP_001".into()),
            psp_broker: Some("INT_123".into()),
            psp_channel: Some("CANALE_POS".into()),
            timeout_ms: None,
        };
        let s = pos_settings(none, file.clone()).unwrap().unwrap();
        assert_eq!(s.url, "https://api.platform.pagopa.it/pos-layer-service");
        assert_eq!(s.psp.channel, "CANALE_POS");
        let env = |name: &str| (name == "INCASSO_POS_PSP_ID").then(|| "ALTRO".to_string());
        assert_eq!(
            pos_settings(env, file.clone()).unwrap().unwrap().psp.id,
            "ALTRO"
        );
        let half = PosFile {
            psp_channel: None,
            ..file.clone()
        };
        assert!(pos_settings(none, half).is_err());
        let bad = PosFile {
            gateway_url: Some("ftp://x".into()),
            ..file
        };
        assert!(pos_settings(none, bad).is_err());
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
