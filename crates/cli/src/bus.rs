//! `incasso load` and `incasso export`: the Digit BUS from the command line.

use anyhow::{Context, Result, anyhow, bail};
use incasso_app::Ctx;
use incasso_app::bus;
use incasso_app::supply::{self, LoadError, Sinks, SupplyFile};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The layout in `file` when one is given, else the Ente's (or built-in)
/// layout called `name`.
async fn layout(
    ctx: &Ctx,
    ente: &str,
    name: &str,
    file: Option<&Path>,
) -> Result<incasso_bus::Layout> {
    match file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading layout {}", p.display()))?;
            incasso_bus::Layout::from_toml(&text).map_err(|e| anyhow!("{}: {e}", p.display()))
        }
        None => bus::layout(ctx, ente, name)
            .await
            .map_err(|e| anyhow!("{}", e.detail)),
    }
}

/// Loads FILE; exits 0 only if the supply was accepted. Writes the outcome
/// (the file with its notice numbers) beside it as `FILE.esito` (`.xlsx` or
/// `.zip` added for spreadsheets and zipped supplies), and the
/// per-row report as `FILE.rapporto.csv` when rows were refused.
/// Which file to load, and how to read it.
pub struct LoadArgs<'a> {
    pub ente: &'a str,
    pub layout_name: &'a str,
    pub layout_file: Option<PathBuf>,
    pub service: Option<&'a str>,
    pub file: &'a Path,
}

pub async fn load(ctx: &Ctx, args: LoadArgs<'_>) -> Result<()> {
    let LoadArgs {
        ente,
        layout_name,
        layout_file,
        service,
        file,
    } = args;
    let layout = layout(ctx, ente, layout_name, layout_file.as_deref()).await?;
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {elapsed_precise}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(format!("{} ({})", file.display(), layout.name));
    let path = file.to_path_buf();
    let reader_bar = bar.clone();
    let open = move || -> std::io::Result<Box<dyn Read + Send>> {
        let f = std::fs::File::open(&path)?;
        reader_bar.set_position(0);
        Ok(Box::new(reader_bar.wrap_read(f)))
    };
    let outcome_path = PathBuf::from(format!(
        "{}{}",
        file.display(),
        supply::outcome_suffix(&layout)
    ));
    let mut outcome = std::io::BufWriter::new(
        std::fs::File::create(&outcome_path)
            .with_context(|| format!("creating {}", outcome_path.display()))?,
    );
    let rows_bar = bar.clone();
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let supply_file = SupplyFile {
        ente,
        layout: &layout,
        default_service: service,
        file_name: &file_name,
        open: &open,
    };
    let result = match bus::prepare(ctx, &supply_file).await {
        Ok(prepared) => {
            if prepared.resumes() {
                bar.suspend(|| {
                    eprintln!(
                        "ripresa del caricamento interrotto (fornitura {})",
                        prepared.supply_id
                    )
                });
            }
            let sinks = Sinks {
                outcome: Some(&mut outcome),
                store_outcome: false,
                progress: &move |rows| rows_bar.set_message(format!("{rows} righe")),
            };
            bus::run(ctx, &supply_file, prepared, sinks).await
        }
        Err(e) => Err(e),
    };
    drop(outcome);
    bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(LoadError::Duplicate(id)) => {
            let _ = std::fs::remove_file(&outcome_path);
            bail!("file già caricato (fornitura {id}): non viene caricato due volte");
        }
        Err(e) => {
            let _ = std::fs::remove_file(&outcome_path);
            return Err(anyhow!("{e}"));
        }
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.errors.is_empty() {
        let path = PathBuf::from(format!("{}.rapporto.csv", file.display()));
        let csv = bus::report_csv(ctx, ente, report.supply_id.unwrap_or(0))
            .await
            .map_err(|e| anyhow!("{}", e.detail))?;
        std::fs::write(&path, csv)?;
        eprintln!("rapporto per riga: {}", path.display());
        for e in report.errors.iter().take(10) {
            eprintln!(
                "  riga {}: {} {} ({}): {}",
                e.line, e.field, e.value, e.code, e.message
            );
        }
    }
    if !report.accepted {
        let _ = std::fs::remove_file(&outcome_path);
        bail!("{}", report.message);
    }
    eprintln!("esito con i numeri avviso: {}", outcome_path.display());
    Ok(())
}

pub async fn export(
    ctx: &Ctx,
    ente: &str,
    layout_name: &str,
    layout_file: Option<PathBuf>,
    consumer: &str,
    output: Option<PathBuf>,
) -> Result<()> {
    let layout = layout(ctx, ente, layout_name, layout_file.as_deref()).await?;
    let (bytes, exported) = bus::prepare_export(ctx, ente, &layout, consumer)
        .await
        .map_err(|e| anyhow!("{}", e.detail))?;
    // Written first, recorded after: a document that could not be written
    // is given again by the next export, never lost.
    match output {
        Some(p) => {
            std::fs::write(&p, &bytes).with_context(|| format!("writing {}", p.display()))?
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout();
            out.write_all(&bytes)?;
            out.flush()?;
        }
    }
    bus::export_delivered(ctx, ente, &layout, consumer, &exported)
        .await
        .map_err(|e| anyhow!("{}", e.detail))?;
    eprintln!("{} pagamenti esportati", exported.len());
    Ok(())
}
