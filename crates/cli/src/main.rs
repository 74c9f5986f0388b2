//! The `incasso` binary.
//!
//! Exit codes: 0 success; 1 failure (the message says why); 2 bad command
//! line (clap's own).

mod bench;
mod bench_backoffice;
mod bench_digitpos;
mod bench_notify;
mod bench_portal;
mod bench_recon;

/// The server allocates and frees many small objects per request (XML trees,
/// rows, JSON); mimalloc measured faster than glibc malloc for that. With
/// its `override` feature it also serves the C code's `malloc` (SQLite's
/// pages and bound values): glibc's was an eighth of a supply's SQLite
/// thread, and a million-row CSV supply loads 12 to 17 % faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bus;
mod config;
mod notices;
mod pos;
mod reconcile;
mod simulator;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use config::Settings;
use incasso_store::KeyScope;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "incasso",
    version,
    about = "incasso: pagoPA collection platform"
)]
struct Cli {
    /// TOML configuration file (keys: database_url, bind, public_url, data_dir).
    #[arg(long, global = true, env = "INCASSO_CONFIG")]
    config: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(
        long,
        global = true,
        env = "INCASSO_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone, Default)]
pub struct DbArgs {
    /// Database URL: sqlite://FILE or postgres://... (default: sqlite in the data dir).
    #[arg(long, env = "INCASSO_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Data directory (default ./incasso-data).
    #[arg(long, env = "INCASSO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (migrations run at start).
    Serve {
        #[command(flatten)]
        db: DbArgs,
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, env = "INCASSO_BIND")]
        bind: Option<String>,
        /// The base of every absolute URL incasso gives out (Checkout
        /// return URLs, links in messages), e.g. https://pagamenti.comune.it
        /// (default: http:// and the listen address).
        #[arg(long, env = "INCASSO_PUBLIC_URL")]
        public_url: Option<String>,
        /// Seed the demo data (once) and write <data-dir>/demo.json.
        #[arg(long)]
        demo: bool,
        /// The SMTP server receipts are mailed through:
        /// smtp://[user:password@]host[:port][?tls=required] or smtps://...
        /// (with --demo, by default the simulator's).
        #[arg(long, env = "INCASSO_SMTP_URL")]
        smtp_url: Option<String>,
        /// The sender of incasso's e-mail, e.g. "Comune <pagamenti@comune.it>".
        #[arg(long, env = "INCASSO_MAIL_FROM")]
        mail_from: Option<String>,
        /// Proxies in front of incasso whose X-Forwarded-For names the
        /// citizen portal's client (addresses or CIDR ranges,
        /// comma-separated); without one, the connection's peer is.
        #[arg(long, env = "INCASSO_TRUSTED_PROXY")]
        trusted_proxy: Option<String>,
        /// The citizen portal's per-client limits, requests per minute /
        /// at once (default lookup=30/20,create=5/3).
        #[arg(long, env = "INCASSO_PORTAL_LIMITS")]
        portal_limits: Option<String>,
        /// The pagoPA Node's addresses (CIDR ranges, comma-separated): only
        /// they may call /pagopa/paForNode (through --trusted-proxy's
        /// X-Forwarded-For). Default: any address (docs/DEPLOY.md).
        #[arg(long, env = "INCASSO_NODE_ALLOW")]
        node_allow: Option<String>,
        /// The key the Node sends in Ocp-Apim-Subscription-Key, where the
        /// station's configuration on pagoPA's side has one.
        #[arg(long, env = "INCASSO_NODE_KEY", hide_env_values = true)]
        node_key: Option<String>,
    },
    /// Apply the database migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Copy the SQLite database, consistent, while incasso serves from it
    /// (PostgreSQL: use pg_dump, see docs/DEPLOY.md). Restore by putting
    /// the copy in the database's place while incasso is stopped. The data
    /// dir's secret.key is not in the copy: keep it apart, and restore it
    /// with the copy.
    Backup {
        #[command(flatten)]
        db: DbArgs,
        /// The copy to write; it must not exist.
        #[arg(long)]
        output: PathBuf,
    },
    /// Issue an API key: for one Ente with --ente, else intermediary-level.
    ApiKey {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        ente: Option<String>,
        /// With --ente: the Ente's administrator's key, which may also list
        /// and revoke the Ente's keys (an application's key may not).
        #[arg(long, requires = "ente")]
        admin: bool,
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// Load a supply file in a management application's layout.
    Load {
        #[command(flatten)]
        db: DbArgs,
        /// The Ente's fiscal code.
        #[arg(long)]
        ente: String,
        /// A built-in layout (incasso-csv, govpay-csv, govpay-json,
        /// mypay-1_4, gpd-json, legacy-fixed) or one of the Ente's own.
        #[arg(long)]
        layout: String,
        /// A layout from a TOML file instead.
        #[arg(long)]
        layout_file: Option<PathBuf>,
        /// The catalogue service of rows that name none.
        #[arg(long)]
        service: Option<String>,
        file: PathBuf,
    },
    /// Write the payments of an application's positions in its layout,
    /// since this consumer's last export.
    Export {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        ente: String,
        #[arg(long)]
        layout: String,
        #[arg(long)]
        layout_file: Option<PathBuf>,
        /// Who reads the export (each consumer has its own cursor).
        #[arg(long, default_value = "cli")]
        consumer: String,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print payment notices (PDF): a supply's as a ZIP, or one position's,
    /// or one notice number's.
    Notices {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        ente: String,
        /// Every notice of this supply, into a ZIP.
        #[arg(long, conflicts_with_all = ["position", "notice"])]
        supply: Option<i64>,
        /// The notice of this position (its key), with its installments.
        #[arg(long, conflicts_with = "notice")]
        position: Option<String>,
        /// The notice of this notice number alone.
        #[arg(long)]
        notice: Option<String>,
        /// `it`, or `it-de` for Italian and German.
        #[arg(long, default_value = "it")]
        lang: String,
        /// Where to write (default: a name in the current folder).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Take in reporting flows (FdR) and treasury files (OPI giornale di
    /// cassa, camt.053/054), then match the Ente's sospesi to its flows.
    /// Exits non-zero if a file was refused (the others are still taken).
    Reconcile {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        ente: String,
        /// A FlussoRiversamento XML file (repeatable).
        #[arg(long = "flow")]
        flows: Vec<PathBuf>,
        /// A treasury journal or camt file (repeatable).
        #[arg(long = "treasury")]
        treasury: Vec<PathBuf>,
        /// Read the --treasury files with this treasury layout of the
        /// Digit BUS (`tesoreria-csv`, or the Ente's own): a bank's CSV,
        /// fixed-width or spreadsheet export instead of OPI or camt.
        #[arg(long = "treasury-layout")]
        treasury_layout: Option<String>,
        /// First fetch the Ente's new flows from the pagoPA Node, through
        /// its station's connection.
        #[arg(long)]
        fetch: bool,
    },
    /// The pagoPA Node, PSP and Checkout simulator.
    Simulator {
        #[command(subcommand)]
        command: simulator::Command,
    },
    /// Run a benchmark; the last line printed is a JSON object of figures.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

/// `mi_option_purge_delay` in mimalloc 3's option list.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> Result<()> {
    // mimalloc as built here gives freed pages back to the system a second
    // after they empty (`purge_delay` 1000 ms): under a steady stream of
    // short-lived allocations (a notification round, a page) that keeps a
    // second working set resident. Given back at once, `bench notify`'s
    // peak RSS on SQLite went from 219-221 MiB to 140-142 MiB (at 10 or
    // 100 ms it stayed about 200); its throughput moved within the
    // machine's noise (docs/BENCHMARKS.md).
    // SAFETY: set before any other thread exists, as mimalloc asks.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    incasso_pagopa::connector::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

/// Standard error, through which every log line passes masked
/// (`incasso_core::redact`): a fiscal code, an IBAN or a key in any field or
/// message never reaches the log. The formatter writes an event in one
/// call, so each call is a whole line.
struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(incasso_core::redact::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only for a person at a terminal: a log file or a journal
    // would keep the escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| RedactingStderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> Result<()> {
    let file = config::FileConfig::load(cli.config.as_deref())?;
    let file_config = &file;
    match cli.command {
        Command::Serve {
            db,
            bind,
            public_url,
            demo,
            smtp_url,
            mail_from,
            trusted_proxy,
            portal_limits,
            node_allow,
            node_key,
        } => {
            let mut settings = Settings::resolve(&db, config::Listen { bind, public_url }, &file)?;
            let smtp_url = smtp_url.filter(|u| !u.trim().is_empty());
            config::check_smtp_url(smtp_url.as_deref())?;
            settings.smtp_url = smtp_url.or(settings.smtp_url);
            settings.mail_from = mail_from
                .filter(|f| !f.trim().is_empty())
                .or(settings.mail_from);
            settings.limits = config::portal_limits(
                settings.limits,
                trusted_proxy.as_deref(),
                portal_limits.as_deref(),
            )?;
            if node_allow.is_some() || node_key.is_some() {
                settings.node_access = config::node_access(
                    node_allow.as_deref().or(file.node_allow.as_deref()),
                    node_key.as_deref().or(file.node_key.as_deref()),
                )?;
            }
            serve(settings, demo).await
        }
        Command::Migrate { db } => {
            let settings = Settings::resolve(&db, config::Listen::default(), &file)?;
            let store = settings.open_store().await?;
            store.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Backup { db, output } => {
            let settings = Settings::resolve(&db, config::Listen::default(), &file)?;
            // Not migrated: a backup must not change the database it copies.
            let store = incasso_store::Store::connect_without_migrating(&settings.database_url)
                .await
                .with_context(|| {
                    format!(
                        "opening database {}",
                        config::redact(&settings.database_url)
                    )
                })?;
            let app = incasso_app::App::new(store.clone(), incasso_app::Settings::new(""));
            let bytes = incasso_app::ops::backup(&app, &output).await;
            store.close().await;
            let bytes = bytes.map_err(|e| anyhow::anyhow!("{} ({})", e.detail, e.code))?;
            println!("copia scritta: {} ({bytes} byte)", output.display());
            Ok(())
        }
        Command::ApiKey {
            db,
            ente,
            admin,
            label,
        } => {
            let settings = Settings::resolve(&db, config::Listen::default(), &file)?;
            let store = settings.open_store().await?;
            let scope = if admin {
                KeyScope::EnteAdmin
            } else {
                KeyScope::Ente
            };
            let (id, key) = incasso_app::keys::issue_key(&store, ente.as_deref(), scope, &label)
                .await
                .context("issuing the key")?;
            eprintln!("key id {id}; the key is shown only now:");
            println!("{key}");
            Ok(())
        }
        Command::Bench { which } => bench::run(which).await,
        Command::Simulator { command } => simulator::run(command).await,
        Command::Load {
            db,
            ente,
            layout,
            layout_file,
            service,
            file,
        } => {
            let store = Settings::resolve(&db, config::Listen::default(), file_config)?
                .open_store()
                .await?;
            let args = bus::LoadArgs {
                ente: &ente,
                layout_name: &layout,
                layout_file,
                service: service.as_deref(),
                file: &file,
            };
            let result = bus::load(&cli_ctx(&store), args).await;
            store.close().await;
            result
        }
        Command::Notices {
            db,
            ente,
            supply,
            position,
            notice,
            lang,
            output,
        } => {
            let store = Settings::resolve(&db, config::Listen::default(), file_config)?
                .open_store()
                .await?;
            let which = match (supply, position, notice) {
                (Some(id), _, _) => notices::Which::Supply(id),
                (_, Some(key), _) => notices::Which::Position(key),
                (_, _, Some(nav)) => notices::Which::Notice(nav),
                _ => anyhow::bail!("indicare --supply, --position oppure --notice"),
            };
            let result = notices::run(&cli_ctx(&store), &ente, which, &lang, output).await;
            store.close().await;
            result
        }
        Command::Reconcile {
            db,
            ente,
            flows,
            treasury,
            treasury_layout,
            fetch,
        } => {
            let store = Settings::resolve(&db, config::Listen::default(), file_config)?
                .open_store()
                .await?;
            let inputs = reconcile::Inputs {
                fetch,
                flows: &flows,
                treasury: &treasury,
                treasury_layout: treasury_layout.as_deref(),
            };
            let result = reconcile::run(&cli_ctx(&store), &ente, inputs).await;
            store.close().await;
            result
        }
        Command::Export {
            db,
            ente,
            layout,
            layout_file,
            consumer,
            output,
        } => {
            let store = Settings::resolve(&db, config::Listen::default(), file_config)?
                .open_store()
                .await?;
            let result = bus::export(
                &cli_ctx(&store),
                &ente,
                &layout,
                layout_file,
                &consumer,
                output,
            )
            .await;
            store.close().await;
            result
        }
    }
}

/// The context of a batch command: incasso's operator at the machine, who
/// may act on every Ente. Batch commands give out no URLs.
fn cli_ctx(store: &incasso_store::Store) -> incasso_app::Ctx {
    incasso_app::App::new(store.clone(), incasso_app::Settings::new("")).system("cli")
}

async fn serve(settings: Settings, demo: bool) -> Result<()> {
    let store = settings.open_store().await?;
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .with_context(|| format!("binding {}", settings.bind))?;
    let addr = listener.local_addr()?;
    let public_url = settings.public_url(addr);
    let mut app_settings = incasso_app::Settings::new(&public_url);
    app_settings.data_dir = Some(settings.data_dir.clone());
    app_settings.spid = settings.spid.clone();
    app_settings.smtp_url = settings.smtp_url.clone();
    app_settings.mail_from = settings.mail_from.clone();
    // App IO's services API (e.g. https://api.io.pagopa.it/api/v1): none,
    // no message goes to IO.
    app_settings.io_url = std::env::var("INCASSO_IO_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    if let Some(gateway) = settings.pos.clone() {
        app_settings.pos =
            Some(incasso_app::pos::PosSettings::http(gateway).context("the POS gateway")?);
    }
    let mut app = incasso_app::App::new(store.clone(), app_settings.clone());
    let mut simulator = None;
    let mut smtp_sink = None;
    if demo {
        // The simulator listens where incasso does (so that a colleague's
        // browser reaches its Checkout page too), on a port of its own, and
        // is reached under the public URL's host.
        let sim_listener = tokio::net::TcpListener::bind((addr.ip(), 0))
            .await
            .context("binding the simulator")?;
        let sim_addr = sim_listener.local_addr()?;
        let sim_url = config::same_host(&public_url, sim_addr.port());
        // The simulator's App IO, unless another is set.
        if app_settings.io_url.is_none() {
            app_settings.io_url = Some(format!("{sim_url}/io/api/v1"));
            app = incasso_app::App::new(store.clone(), app_settings.clone());
        }
        // Its SMTP server takes incasso's e-mail, unless another is set.
        let smtp_listener = tokio::net::TcpListener::bind((addr.ip(), 0))
            .await
            .context("binding the simulator's SMTP server")?;
        if app_settings.smtp_url.is_none() {
            let smtp_addr = smtp_listener.local_addr()?;
            app_settings.smtp_url = Some(format!("smtp://{smtp_addr}"));
            app = incasso_app::App::new(store.clone(), app_settings.clone());
        }
        let path = incasso_app::demo::seed(&app.system("demo"), &settings.data_dir, &sim_url)
            .await
            .context("seeding the demo")?;
        // Its services tell citizens through the simulator's App IO.
        for ente in store.list_enti().await? {
            incasso_app::notify::seed_demo(&app.system("demo"), &ente.fiscal_code).await;
        }
        let (mut sim_settings, demo_json) = simulator::settings_from_demo(&path, None)?;
        // Operators sign in with the simulator's SPID/CIE test identities,
        // unless another identity proxy is configured.
        if app_settings.spid.is_none() {
            app_settings.spid = simulator::demo_spid(&demo_json);
            app = incasso_app::App::new(store.clone(), app_settings);
        }
        sim_settings.public_url = Some(sim_url.clone());
        let pos_key = sim_settings.required_subscription_key.clone();
        let sim = incasso_simulator::Simulator::new(sim_settings);
        sim.webhooks_from_demo(&demo_json);
        // The desks' card terminals pay through the simulated POS gateway.
        app = pos::demo(&app, &sim, &sim_url, pos_key, &demo_json).await?;
        smtp_sink = Some(tokio::spawn(sim.clone().serve_smtp(smtp_listener)));
        simulator = Some(tokio::spawn(sim.serve(sim_listener, shutdown_signal())));
        tracing::info!(file = %path.display(), simulator = %sim_url, "demo data ready");
    }
    tracing::info!(%addr, %public_url, database = ?store.dialect(), "incasso listening");
    let state = incasso_server::AppState::new(app)
        .with_limits(settings.limits.clone())
        .with_node_access(settings.node_access.clone());
    incasso_server::serve_state(listener, state, shutdown_signal())
        .await
        .context("serving HTTP")?;
    if let Some(sim) = simulator {
        sim.abort();
    }
    if let Some(sink) = smtp_sink {
        sink.abort();
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM; axum then finishes the requests in flight.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested: finishing requests in flight");
}
