//! The Ente's registry: Enti, stations and their connection to the Node,
//! offices, the service catalogue, accertamenti, receipts.

use crate::error::{AppError, At, Kind, Place};
use crate::paging::{self, Page};
use crate::{Caller, Ctx};
use incasso_core::FieldError;
use incasso_core::accertamento::Accertamento;
use incasso_core::access::{Access, Area};
use incasso_core::catalogue::Service;
use incasso_core::ente::{Ente, Office, StationLink};
use incasso_pagopa::connector::{self, ConnectionSettings, StationIdentity};
use incasso_store::{ReceiptCursor, StoredReceipt};

// ---------------------------------------------------------------- Enti

/// A page of the Enti the caller can see (all of them for the
/// intermediary), by fiscal code.
pub async fn list_enti(
    ctx: &Ctx,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<Ente>, AppError> {
    let limit = registry_limit(limit)?;
    let enti = ctx
        .store()
        .list_enti()
        .await
        .at(Place::new("enti.list", "", ""))?;
    let visible = enti
        .into_iter()
        .filter(|e| ctx.caller.require_ente(&e.fiscal_code).is_ok())
        .collect();
    paging::of_whole(visible, cursor, limit, 1, |e| vec![e.fiscal_code.clone()])
}

fn registry_limit(asked: Option<u32>) -> Result<u32, AppError> {
    let (default, max) = paging::REGISTRY_PAGE;
    paging::limit(asked, default, max)
}

pub async fn create_ente(ctx: &Ctx, ente: &Ente) -> Result<(), AppError> {
    crate::audit::audited(
        ctx,
        Some(&ente.fiscal_code),
        "ente.create",
        &ente.fiscal_code,
        async {
            ctx.caller.require_intermediary()?;
            ctx.store()
                .create_ente(ente, ctx.now())
                .await
                .at(Place::new("enti.create", &ente.fiscal_code, ""))
        },
    )
    .await
}

pub async fn get_ente(ctx: &Ctx, fc: &str) -> Result<Ente, AppError> {
    ctx.caller.require_ente(fc)?;
    ctx.store()
        .get_ente(fc)
        .await
        .at(Place::new("enti.get", fc, ""))
}

/// Updates an Ente's data; its fiscal code (`fc`) never changes.
pub async fn update_ente(ctx: &Ctx, fc: &str, ente: &Ente) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(fc), "ente.update", fc, async {
        ctx.caller.require_ente(fc)?;
        if ente.fiscal_code != fc {
            return Err(AppError::invalid(
                "FISCAL_CODE_MISMATCH",
                "fiscalCode: il codice fiscale nel corpo è diverso da quello nel percorso",
            ));
        }
        ctx.store()
            .update_ente(ente, ctx.now())
            .await
            .at(Place::new("enti.update", fc, ""))?;
        ctx.app.portal_styles.forget(fc);
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------- stations

/// A page of the Ente's stations, by station id.
pub async fn list_stations(
    ctx: &Ctx,
    fc: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<StationLink>, AppError> {
    ctx.caller.require_ente(fc)?;
    let limit = registry_limit(limit)?;
    let at = Place::new("stations.list", fc, "");
    ctx.store().get_ente(fc).await.at(at)?;
    let all = ctx.store().list_stations(fc).await.at(at)?;
    paging::of_whole(all, cursor, limit, 1, |s| vec![s.station_id.clone()])
}

pub async fn add_station(ctx: &Ctx, fc: &str, link: &StationLink) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(fc), "station.add", &link.station_id, async {
        ctx.caller.require_intermediary()?;
        ctx.store()
            .add_station(fc, link, ctx.now())
            .await
            .at(Place::new("stations.add", fc, &link.station_id))?;
        ctx.app.stations.forget(fc);
        Ok(())
    })
    .await
}

pub async fn remove_station(ctx: &Ctx, fc: &str, station: &str) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(fc), "station.remove", station, async {
        ctx.caller.require_intermediary()?;
        ctx.store()
            .remove_station(fc, station)
            .await
            .at(Place::new("stations.remove", fc, station))?;
        ctx.app.stations.forget(fc);
        Ok(())
    })
    .await
}

/// How the station reaches the Node, its secrets redacted.
pub async fn connection(
    ctx: &Ctx,
    fc: &str,
    station: &str,
) -> Result<ConnectionSettings, AppError> {
    ctx.caller.require_intermediary()?;
    let at = Place::new("stations.connection", fc, station);
    match ctx.store().station_connection(fc, station).await.at(at)? {
        Some(json) => {
            let settings: ConnectionSettings =
                serde_json::from_str(&json).map_err(|e| AppError::internal(&at, &e))?;
            Ok(settings.redacted())
        }
        None => Err(AppError::new(
            Kind::NotFound,
            "NOT_FOUND",
            "collegamento non configurato",
        )),
    }
}

/// Sets how the station reaches the Node; answers it redacted. Building the
/// connector checks what can be checked now (certificates, connector name),
/// so a bad configuration fails here, not at payment time.
pub async fn set_connection(
    ctx: &Ctx,
    fc: &str,
    station: &str,
    mut settings: ConnectionSettings,
) -> Result<ConnectionSettings, AppError> {
    crate::audit::audited(ctx, Some(fc), "station.connection", station, async {
        ctx.caller.require_intermediary()?;
        let at = Place::new("stations.set_connection", fc, station);
        let stored: Option<ConnectionSettings> =
            match ctx.store().station_connection(fc, station).await.at(at)? {
                Some(json) => {
                    Some(serde_json::from_str(&json).map_err(|e| AppError::internal(&at, &e))?)
                }
                None => None,
            };
        settings
            .keep_redacted_secrets(stored.as_ref())
            .map_err(|field| {
                AppError::invalid(
                    "REDACTED_SECRET",
                    format!(
                        "{field}: '***' sta per il segreto già salvato, ma non ce n'è uno da tenere: indicare il valore"
                    ),
                )
            })?;
        connector::build(
            &settings,
            StationIdentity {
                broker_id: String::new(),
                station_id: station.to_string(),
            },
        )
        .map_err(|e| AppError::invalid("BAD_CONNECTION", e.to_string()))?;
        let json = serde_json::to_string(&settings).map_err(|e| AppError::internal(&at, &e))?;
        ctx.store()
            .set_station_connection(fc, station, Some(&json))
            .await
            .at(at)?;
        ctx.app.stations.forget(fc);
        Ok(settings.redacted())
    })
    .await
}

// ---------------------------------------------------------------- receipts

/// A page of the Ente's receipts, newest first, and the cursor of the next
/// page when there is one.
pub async fn list_receipts(
    ctx: &Ctx,
    fc: &str,
    anomalies: bool,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<StoredReceipt>, AppError> {
    ctx.caller.require(
        fc,
        incasso_core::access::Area::Reporting,
        incasso_core::access::Access::Read,
    )?;
    // Offices do not divide this list: an operator limited to some
    // offices reads receipts through `receipts::search`, which does.
    if crate::receipts::office_scope(ctx).is_some() {
        return Err(AppError::forbidden());
    }
    let limit = paging::limit(limit, 100, 1000)?;
    let after = match cursor {
        Some(c) => {
            let parts = paging::decode(c, 2)?;
            Some(ReceiptCursor {
                received_at: parts[0].parse().map_err(|_| paging::bad_cursor())?,
                receipt_id: parts[1].clone(),
            })
        }
        None => None,
    };
    let items = ctx
        .store()
        .list_receipts(fc, anomalies, after.as_ref(), limit + 1)
        .await
        .at(Place::new("receipts.list", fc, ""))?;
    Ok(paging::page(items, limit, |r| {
        vec![r.received_at.to_string(), r.receipt_id.clone()]
    }))
}

/// The receipt exactly as the Node sent it. An operator limited to some
/// offices gets those offices' receipts only.
pub async fn receipt_xml(ctx: &Ctx, fc: &str, receipt_id: &str) -> Result<String, AppError> {
    ctx.caller.require(
        fc,
        incasso_core::access::Area::Reporting,
        incasso_core::access::Access::Read,
    )?;
    if crate::receipts::office_scope(ctx).is_some() {
        crate::receipts::detail(ctx, fc, receipt_id).await?;
    }
    ctx.store()
        .receipt_xml(fc, receipt_id)
        .await
        .at(Place::new("receipts.xml", fc, receipt_id))
}

// ---------------------------------------------------------------- offices

/// Whether data of `office` is in the caller's scope: an operator limited
/// to offices sees only theirs; keys and administrators see all.
fn sees_office(ctx: &Ctx, office: Option<&str>) -> bool {
    match &ctx.caller {
        Caller::Operator(o) => o.rights.sees_office(office),
        _ => true,
    }
}

/// The offices' structure is the Ente's organisation, on which operators'
/// scopes rest: changed with the Catalogue area in writing, and never by
/// an operator limited to offices (who could widen their own reach).
fn require_organisation(ctx: &Ctx, fc: &str) -> Result<(), AppError> {
    ctx.caller.require(fc, Area::Catalogue, Access::Write)?;
    match &ctx.caller {
        Caller::Operator(o) if o.rights.office_scope().is_some() => Err(AppError::forbidden()),
        _ => Ok(()),
    }
}

/// A page of the Ente's offices, by code. No area: every operator of the
/// Ente reads the names of its offices (one limited to offices, theirs),
/// which the forms of every area offer; keys as before, by their Ente.
pub async fn list_offices(
    ctx: &Ctx,
    fc: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<Office>, AppError> {
    match &ctx.caller {
        Caller::Operator(o) if o.rights.reaches(fc) => {}
        _ => ctx.caller.require_ente(fc)?,
    }
    let limit = registry_limit(limit)?;
    let at = Place::new("offices.list", fc, "");
    ctx.store().get_ente(fc).await.at(at)?;
    let mut all = ctx.store().list_offices(fc).await.at(at)?;
    all.retain(|o| sees_office(ctx, Some(&o.code)));
    paging::of_whole(all, cursor, limit, 1, |o| vec![o.code.clone()])
}

/// Creates or replaces an office (idempotent by code).
pub async fn put_office(ctx: &Ctx, fc: &str, office: &Office) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(fc), "office.put", &office.code, async {
        require_organisation(ctx, fc)?;
        ctx.store()
            .put_office(fc, office)
            .await
            .at(Place::new("offices.put", fc, &office.code))
    })
    .await
}

pub async fn delete_office(ctx: &Ctx, fc: &str, code: &str) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(fc), "office.delete", code, async {
        require_organisation(ctx, fc)?;
        ctx.store()
            .delete_office(fc, code)
            .await
            .at(Place::new("offices.delete", fc, code))
    })
    .await
}

// ---------------------------------------------------------------- catalogue

/// A page of the Ente's catalogue, by service code (Catalogue area; an
/// operator limited to offices sees their offices' services).
pub async fn list_services(
    ctx: &Ctx,
    fc: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<Service>, AppError> {
    ctx.caller.require(fc, Area::Catalogue, Access::Read)?;
    let limit = registry_limit(limit)?;
    let at = Place::new("services.list", fc, "");
    ctx.store().get_ente(fc).await.at(at)?;
    let mut all = ctx.store().list_services(fc).await.at(at)?;
    all.retain(|s| sees_office(ctx, s.office_code.as_deref()));
    paging::of_whole(all, cursor, limit, 1, |s| vec![s.code.clone()])
}

/// A service of the catalogue; one outside the caller's offices is
/// refused as if it did not exist.
pub async fn get_service(ctx: &Ctx, fc: &str, code: &str) -> Result<Service, AppError> {
    ctx.caller.require(fc, Area::Catalogue, Access::Read)?;
    let at = Place::new("services.get", fc, code);
    let service = ctx.store().get_service(fc, code).await.at(at)?;
    if !sees_office(ctx, service.office_code.as_deref()) {
        return Err(crate::error::from_store(
            incasso_store::StoreError::NotFound("servizio"),
            &at,
        ));
    }
    Ok(service)
}

/// The service as it is stored, if it is, after checking that the caller
/// may change it: the Catalogue area in writing, and both its office now
/// and the one it is given within the caller's offices.
async fn writable_service(
    ctx: &Ctx,
    fc: &str,
    service: &Service,
) -> Result<Option<Service>, AppError> {
    ctx.caller.require(fc, Area::Catalogue, Access::Write)?;
    let at = Place::new("services.put", fc, &service.code);
    let stored = match ctx.store().get_service(fc, &service.code).await {
        Ok(s) => Some(s),
        Err(incasso_store::StoreError::NotFound(_)) => None,
        Err(e) => return Err(crate::error::from_store(e, &at)),
    };
    let now_ok = stored
        .as_ref()
        .is_none_or(|s| sees_office(ctx, s.office_code.as_deref()));
    if !now_ok || !sees_office(ctx, service.office_code.as_deref()) {
        return Err(AppError::forbidden());
    }
    Ok(stored)
}

/// Creates or replaces a catalogue service (idempotent by code).
pub async fn put_service(ctx: &Ctx, fc: &str, service: &Service) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(fc), "service.put", &service.code, async {
        writable_service(ctx, fc, service).await?;
        ctx.store()
            .put_service(fc, service)
            .await
            .at(Place::new("services.put", fc, &service.code))
    })
    .await
}

/// Adds a service to the catalogue; a code already used is refused (a
/// form meant to create never replaces what another person made).
pub async fn create_service(ctx: &Ctx, fc: &str, service: &Service) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(fc), "service.create", &service.code, async {
        if writable_service(ctx, fc, service).await?.is_some() {
            return Err(taken(
                "code",
                format!("esiste già un servizio con codice '{}'", service.code),
            ));
        }
        ctx.store().put_service(fc, service).await.at(Place::new(
            "services.create",
            fc,
            &service.code,
        ))
    })
    .await
}

/// A refusal of input that names its field.
fn taken(field: &str, message: String) -> AppError {
    let mut e = AppError::invalid("ALREADY_EXISTS", format!("{field}: {message}"));
    e.errors.push(FieldError {
        field: field.into(),
        code: "ALREADY_EXISTS",
        message,
    });
    e
}

// ---------------------------------------------------------------- accertamenti

/// A page of the Ente's accertamenti (of one year if given), by year and
/// code.
pub async fn list_accertamenti(
    ctx: &Ctx,
    fc: &str,
    year: Option<i32>,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<Accertamento>, AppError> {
    ctx.caller.require(fc, Area::Accertamenti, Access::Read)?;
    let limit = registry_limit(limit)?;
    let at = Place::new("accertamenti.list", fc, "");
    ctx.store().get_ente(fc).await.at(at)?;
    let all = ctx.store().list_accertamenti(fc, year).await.at(at)?;
    // Zero-padded so that the years' text order is their number order.
    paging::of_whole(all, cursor, limit, 2, |a| {
        vec![format!("{:06}", a.year), a.code.clone()]
    })
}

pub async fn get_accertamento(
    ctx: &Ctx,
    fc: &str,
    year: i32,
    code: &str,
) -> Result<Accertamento, AppError> {
    ctx.caller.require(fc, Area::Accertamenti, Access::Read)?;
    ctx.store()
        .get_accertamento(fc, year, code)
        .await
        .at(Place::new("accertamenti.get", fc, code))
}

/// Creates or replaces an accertamento (idempotent by year and code).
pub async fn put_accertamento(ctx: &Ctx, fc: &str, acc: &Accertamento) -> Result<(), AppError> {
    crate::audit::audited(
        ctx,
        Some(fc),
        "accertamento.put",
        &format!("{}/{}", acc.year, acc.code),
        async {
            ctx.caller.require(fc, Area::Accertamenti, Access::Write)?;
            ctx.store().put_accertamento(fc, acc).await.at(Place::new(
                "accertamenti.put",
                fc,
                &acc.code,
            ))
        },
    )
    .await
}

/// Creates or replaces many accertamenti at once (a year's budget): all or
/// none; errors name the entry (`[3].chapter`).
pub async fn load_accertamenti(
    ctx: &Ctx,
    fc: &str,
    list: &[Accertamento],
) -> Result<usize, AppError> {
    crate::audit::audited(ctx, Some(fc), "accertamento.load", "list", async {
        ctx.caller.require(fc, Area::Accertamenti, Access::Write)?;
        ctx.store()
            .put_accertamenti(fc, list)
            .await
            .at(Place::new("accertamenti.load", fc, ""))
    })
    .await
}

/// Adds an accertamento; a year and code already used are refused (a form
/// meant to create never replaces what another person made).
pub async fn create_accertamento(ctx: &Ctx, fc: &str, acc: &Accertamento) -> Result<(), AppError> {
    let object = format!("{}/{}", acc.year, acc.code);
    crate::audit::audited(ctx, Some(fc), "accertamento.create", &object, async {
        ctx.caller.require(fc, Area::Accertamenti, Access::Write)?;
        let at = Place::new("accertamenti.create", fc, &acc.code);
        acc.validate()?;
        match ctx.store().get_accertamento(fc, acc.year, &acc.code).await {
            Ok(_) => {
                return Err(taken("code", format!("esiste già l'accertamento {object}")));
            }
            Err(incasso_store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(crate::error::from_store(e, &at)),
        }
        ctx.store().put_accertamento(fc, acc).await.at(at)
    })
    .await
}

/// Activates or deactivates an accertamento: a deactivated one takes no
/// new quotas (positions, services' defaults), and keeps its history.
pub async fn set_accertamento_active(
    ctx: &Ctx,
    fc: &str,
    year: i32,
    code: &str,
    active: bool,
) -> Result<(), AppError> {
    let action = if active {
        "accertamento.activate"
    } else {
        "accertamento.deactivate"
    };
    crate::audit::audited(ctx, Some(fc), action, &format!("{year}/{code}"), async {
        ctx.caller.require(fc, Area::Accertamenti, Access::Write)?;
        let at = Place::new("accertamenti.set_active", fc, code);
        let mut acc = ctx.store().get_accertamento(fc, year, code).await.at(at)?;
        acc.active = active;
        ctx.store().put_accertamento(fc, &acc).await.at(at)
    })
    .await
}

/// The most rows a CSV of accertamenti may have: an Ente's budget has a
/// few hundred, and a bigger file is a mistake, not a budget.
pub const MAX_ACCERTAMENTI_ROWS: usize = incasso_bus::accertamenti::MAX_ROWS;

/// Loads a CSV of accertamenti (a year's budget) as a clerk exports it
/// from a spreadsheet: the whole file or nothing. Every bad row is
/// reported with its line and column (`riga 3, capitolo`); `year` is the
/// budget year of rows without an `anno` column.
pub async fn load_accertamenti_csv(
    ctx: &Ctx,
    fc: &str,
    year: Option<i32>,
    data: &[u8],
) -> Result<usize, AppError> {
    crate::audit::audited(ctx, Some(fc), "accertamento.load", "csv", async {
        ctx.caller.require(fc, Area::Accertamenti, Access::Write)?;
        let list = parse_accertamenti_csv(data, year)?;
        ctx.store().put_accertamenti(fc, &list).await.at(Place::new(
            "accertamenti.load_csv",
            fc,
            "",
        ))
    })
    .await
}

/// The file as rows of accertamenti, or every problem found in it
/// (`incasso_bus::accertamenti` reads it, where it is fuzzed).
pub fn parse_accertamenti_csv(
    data: &[u8],
    year: Option<i32>,
) -> Result<Vec<Accertamento>, AppError> {
    incasso_bus::accertamenti::parse_csv(data, year).map_err(|refused| {
        let mut e = AppError::invalid("BAD_CSV", refused.to_string());
        e.errors = refused.0;
        e
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_csv_is_read_with_its_italian_columns() {
        let csv = "\u{feff}Anno;Codice;Descrizione;Capitolo;Articolo;Codice SIOPE;Attivo\n\
                   2026;ACC-1;TARI ordinaria;1010;1;3010;sì\n\
                   2026;ACC-2;Diritti di segreteria è;2020;;;no\n";
        let list = parse_accertamenti_csv(csv.as_bytes(), None).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].siope_code.as_deref(), Some("3010"));
        assert!(!list[1].active);
        assert_eq!(list[1].description, "Diritti di segreteria è");
        // Comma-separated, no year column: the year given.
        let csv = "codice,descrizione,capitolo\nX1,Multe,3030\n";
        let list = parse_accertamenti_csv(csv.as_bytes(), Some(2027)).unwrap();
        assert_eq!(list[0].year, 2027);
    }

    #[test]
    fn bad_rows_are_named_by_line_and_column() {
        let csv = "anno;codice;descrizione;capitolo;codice siope\n\
                   2026;ACC-1;TARI;1010;\n\
                   2026;ACC 2;Multe;;30\n\
                   20x6;ACC-3;Altro;1;\n\
                   2026;ACC-1;Di nuovo;1010;\n";
        let e = parse_accertamenti_csv(csv.as_bytes(), None).unwrap_err();
        let fields: Vec<&str> = e.errors.iter().map(|f| f.field.as_str()).collect();
        assert!(fields.contains(&"riga 3, codice"), "{fields:?}");
        assert!(fields.contains(&"riga 3, capitolo"), "{fields:?}");
        assert!(fields.contains(&"riga 3, codice SIOPE"), "{fields:?}");
        assert!(fields.contains(&"riga 4, anno"), "{fields:?}");
        assert!(fields.contains(&"riga 5, codice"), "{fields:?}");
        let e = parse_accertamenti_csv(b"codice;nome\n", Some(2026)).unwrap_err();
        assert!(e.errors.iter().any(|f| f.message.contains("«nome»")));
        assert!(e.errors.iter().any(|f| f.message.contains("«descrizione»")));
        let e = parse_accertamenti_csv(b"codice;descrizione;capitolo\n", Some(2026)).unwrap_err();
        assert_eq!(e.errors[0].field, "file");
    }
}
