//! Payment notices: one notice number's, a whole position's with its
//! installments, every notice of a supply or of a filter as a ZIP written
//! while it is made, and the Ente's logo. Notices are made on demand, never
//! while a supply loads.

use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use incasso_notice::Language;
use incasso_notice::position::{Refusal, from_position};
use incasso_store::{ListFilter, Store, StoredPosition};
use std::io::Write;

fn refusal(r: Refusal) -> AppError {
    let kind = match r {
        Refusal::UnknownNotice => Kind::NotFound,
        _ => Kind::Conflict,
    };
    AppError::new(kind, r.code(), r.to_string())
}

/// `it` (the default) or `it-de`.
pub fn language(lang: Option<&str>) -> Result<Language, AppError> {
    lang.unwrap_or("it")
        .parse()
        .map_err(|e: String| AppError::invalid("BAD_LANGUAGE", format!("lang: {e}")))
}

/// The notice of one stored position (of one of its notice numbers when
/// `only` is given).
pub(crate) async fn render(
    ctx: &Ctx,
    ente: &str,
    p: &StoredPosition,
    only: Option<&str>,
    lang: Language,
) -> Result<Vec<u8>, AppError> {
    let at = Place::new("notices.render", ente, &p.position.iupd);
    let ente_data = ctx.store().get_ente(ente).await.at(at)?;
    let logo = ctx.store().logo(ente).await.at(at)?.map(|(_, bytes)| bytes);
    let notice =
        from_position(&ente_data, logo, &p.position, only, lang, ctx.now()).map_err(refusal)?;
    // Rendering is CPU work: as many at once as there are cores, so that a
    // rush of PDFs queues for them instead of crowding out every other
    // request's threads (`incasso bench portal`).
    let _turn = RENDERING
        .acquire()
        .await
        .map_err(|e| AppError::internal(&at, &e))?;
    tokio::task::spawn_blocking(move || {
        incasso_notice::render_packed(&notice, incasso_notice::Packing::Quick)
    })
    .await
    .map_err(|e| AppError::internal(&at, &e))?
    .map_err(|e| AppError::internal(&at, &e))
}

static RENDERING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});

/// The payment notice of one notice number, as PDF.
pub async fn notice_pdf(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
    lang: Language,
) -> Result<Vec<u8>, AppError> {
    ctx.caller.require(
        ente,
        incasso_core::access::Area::Positions,
        incasso_core::access::Access::Read,
    )?;
    let (stored, _) = ctx
        .store()
        .find_by_notice_number(ente, nav)
        .await
        .at(Place::new("notices.notice_pdf", ente, nav))?;
    let stored = crate::positions::in_scope(ctx, stored)?;
    render(ctx, ente, &stored, Some(nav), lang).await
}

/// The payment notice of a whole position (single solutions, installments).
pub async fn position_pdf(
    ctx: &Ctx,
    ente: &str,
    iupd: &str,
    lang: Language,
) -> Result<Vec<u8>, AppError> {
    ctx.caller.require(
        ente,
        incasso_core::access::Area::Positions,
        incasso_core::access::Access::Read,
    )?;
    let stored = ctx.store().get_position(ente, iupd).await.at(Place::new(
        "notices.position_pdf",
        ente,
        iupd,
    ))?;
    let stored = crate::positions::in_scope(ctx, stored)?;
    render(ctx, ente, &stored, None, lang).await
}

/// A key as a file name: what is not a letter, digit, `-` or `_` becomes `_`.
pub fn file_safe(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Which positions a bulk ZIP prints.
#[derive(Debug, Clone)]
pub enum Selection {
    /// The positions a supply wrote.
    Supply(i64),
    /// The positions a filter finds (status, due dates, debtor).
    Filter(ListFilter),
}

/// A bulk ZIP ready to be written: checked, and holding what the writer
/// needs on its blocking thread.
#[derive(Clone)]
pub struct ZipJob {
    store: Store,
    ente: String,
    selection: Selection,
    lang: Language,
    now: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for ZipJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipJob")
            .field("ente", &self.ente)
            .field("selection", &self.selection)
            .finish()
    }
}

/// Checks that the caller may print `selection` and that it can be printed
/// now (a supply that finished loading; a filter that filters something).
pub async fn zip_job(
    ctx: &Ctx,
    ente: &str,
    selection: Selection,
    lang: Language,
) -> Result<ZipJob, AppError> {
    match &selection {
        // A supply's notices belong with the supply: whoever may read the
        // supplies archive prints them.
        Selection::Supply(id) => crate::bus::require_supply_in_scope(ctx, ente, *id).await?,
        Selection::Filter(_) => ctx.caller.require_ente(ente)?,
    }
    let at = Place::new("notices.zip", ente, "");
    match &selection {
        Selection::Supply(id) => {
            let supply = ctx.store().supply(ente, *id).await.at(at)?;
            if supply.status == incasso_store::LOADING
                || supply.status == incasso_store::INTERRUPTED
            {
                return Err(AppError::conflict(
                    "SUPPLY_LOADING",
                    "la fornitura non ha finito di caricarsi: gli avvisi si stampano dopo",
                ));
            }
        }
        Selection::Filter(f) => {
            ctx.store().get_ente(ente).await.at(at)?;
            if f.statuses.is_empty()
                && f.due_date_from.is_none()
                && f.due_date_to.is_none()
                && f.debtor_fiscal_code.is_none()
            {
                return Err(AppError::invalid(
                    "FILTER_REQUIRED",
                    "indicare almeno un filtro (status, dueDateFrom, dueDateTo, debtorFiscalCode)",
                ));
            }
        }
    }
    Ok(ZipJob {
        store: ctx.store().clone(),
        ente: ente.to_string(),
        selection,
        lang,
        now: ctx.now(),
    })
}

impl ZipJob {
    /// Every notice of the selected positions into `out` as a ZIP: one PDF
    /// per position, and `indice.csv` listing each position with its file
    /// or the reason it has none. Pages of 100 positions: memory stays flat
    /// whatever their number. Blocking: run it on a blocking thread.
    pub fn write(
        &self,
        handle: &tokio::runtime::Handle,
        out: impl Write,
        progress: &dyn Fn(u64),
    ) -> Result<u64, String> {
        let (store, ente) = (&self.store, self.ente.as_str());
        let ente_data = handle
            .block_on(store.get_ente(ente))
            .map_err(|e| e.to_string())?;
        let logo = handle
            .block_on(store.logo(ente))
            .map_err(|e| e.to_string())?
            .map(|(_, b)| b);
        let mut zip = zip::ZipWriter::new_stream(out);
        // PDFs are compressed already.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let mut index = String::from("chiave;numero_avviso;file;esito\n");
        let mut after = 0;
        let mut page_number = 0;
        let mut written = 0u64;
        loop {
            let page = match &self.selection {
                Selection::Supply(id) => handle
                    .block_on(store.positions_of_supply(ente, *id, after, 100))
                    .map_err(|e| e.to_string())?,
                Selection::Filter(filter) => {
                    let f = ListFilter {
                        page: page_number,
                        limit: 100,
                        ascending: true,
                        ..filter.clone()
                    };
                    page_number += 1;
                    handle
                        .block_on(store.list_positions(ente, &f))
                        .map_err(|e| e.to_string())?
                        .items
                }
            };
            let Some(last) = page.last() else { break };
            after = last.id;
            for stored in &page {
                let p = &stored.position;
                let nav = p
                    .options
                    .iter()
                    .find_map(|o| o.notice_number.as_ref().map(|n| n.as_str().to_string()))
                    .unwrap_or_default();
                match from_position(&ente_data, logo.clone(), p, None, self.lang, self.now) {
                    Ok(notice) => {
                        let bytes = incasso_notice::render(&notice).map_err(|e| e.to_string())?;
                        let name = format!("{}.pdf", file_safe(&p.iupd));
                        zip.start_file(name.as_str(), options)
                            .map_err(|e| e.to_string())?;
                        zip.write_all(&bytes).map_err(|e| e.to_string())?;
                        index.push_str(&format!("{};{nav};{name};stampato\n", p.iupd));
                        written += 1;
                    }
                    Err(r) => index.push_str(&format!("{};{nav};;{r}\n", p.iupd)),
                }
                progress(written);
            }
        }
        zip.start_file("indice.csv", options)
            .map_err(|e| e.to_string())?;
        zip.write_all(index.as_bytes()).map_err(|e| e.to_string())?;
        let mut inner = zip.finish().map_err(|e| e.to_string())?.into_inner();
        inner.flush().map_err(|e| e.to_string())?;
        Ok(written)
    }
}

/// Sets the Ente's logo (PNG or JPEG), printed on its notices.
pub async fn put_logo(ctx: &Ctx, ente: &str, bytes: &[u8]) -> Result<(), AppError> {
    ctx.caller.require_ente(ente)?;
    let content_type = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else {
        return Err(AppError::invalid(
            "BAD_LOGO",
            "il logo deve essere un'immagine PNG o JPEG",
        ));
    };
    ctx.store()
        .put_logo(ente, content_type, bytes, ctx.now())
        .await
        .at(Place::new("notices.put_logo", ente, ""))?;
    ctx.app.portal_styles.forget(ente);
    Ok(())
}

pub async fn delete_logo(ctx: &Ctx, ente: &str) -> Result<(), AppError> {
    ctx.caller.require_ente(ente)?;
    ctx.store()
        .delete_logo(ente)
        .await
        .at(Place::new("notices.delete_logo", ente, ""))?;
    ctx.app.portal_styles.forget(ente);
    Ok(())
}
