//! `incasso notices`: payment notices from the command line, a supply's in
//! bulk (a ZIP, with a progress bar), or one position's or notice number's.

use anyhow::{Context, Result, anyhow};
use incasso_app::Ctx;
use incasso_app::notices::{self, Selection, file_safe};
use incasso_notice::Language;
use std::path::PathBuf;

pub enum Which {
    Supply(i64),
    Position(String),
    Notice(String),
}

pub async fn run(
    ctx: &Ctx,
    ente: &str,
    which: Which,
    lang: &str,
    output: Option<PathBuf>,
) -> Result<()> {
    let lang: Language = lang.parse().map_err(|e: String| anyhow!(e))?;
    match which {
        Which::Supply(id) => {
            let supply = incasso_app::bus::supply(ctx, ente, id)
                .await
                .map_err(|e| anyhow!("fornitura {id}: {}", e.detail))?;
            let job = notices::zip_job(ctx, ente, Selection::Supply(id), lang)
                .await
                .map_err(|e| anyhow!("fornitura {id}: {}", e.detail))?;
            let path =
                output.unwrap_or_else(|| PathBuf::from(format!("avvisi-fornitura-{id}.zip")));
            let file = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            let expected = (supply.positions_created + supply.positions_updated).max(0) as u64;
            let bar = indicatif::ProgressBar::new(expected);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} avvisi [{bar:30}] {pos}/{len} {elapsed_precise} ({per_sec})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            let handle = tokio::runtime::Handle::current();
            let progress_bar = bar.clone();
            let written = tokio::task::spawn_blocking(move || {
                job.write(&handle, std::io::BufWriter::new(file), &|n| {
                    progress_bar.set_position(n)
                })
            })
            .await?
            .map_err(|e| anyhow!("{e}"))?;
            bar.finish_and_clear();
            eprintln!(
                "{written} avvisi in {} (l'indice.csv dice perché mancano gli altri)",
                path.display()
            );
        }
        Which::Position(key) => {
            let bytes = notices::position_pdf(ctx, ente, &key, lang)
                .await
                .map_err(|e| anyhow!("posizione {key}: {}", e.detail))?;
            let path =
                output.unwrap_or_else(|| PathBuf::from(format!("avviso-{}.pdf", file_safe(&key))));
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{}", path.display());
        }
        Which::Notice(nav) => {
            let bytes = notices::notice_pdf(ctx, ente, &nav, lang)
                .await
                .map_err(|e| anyhow!("avviso {nav}: {}", e.detail))?;
            let path =
                output.unwrap_or_else(|| PathBuf::from(format!("avviso-{}.pdf", file_safe(&nav))));
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{}", path.display());
        }
    }
    Ok(())
}
