//! The Ente's registry: Enti, stations and their connection to the Node,
//! offices, the service catalogue, accertamenti, receipts.

use crate::Ctx;
use crate::error::{AppError, At, Kind, Place};
use crate::paging::{self, Page};
use incasso_core::accertamento::Accertamento;
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
            .at(Place::new("enti.update", fc, ""))
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
            .at(Place::new("stations.add", fc, &link.station_id))
    })
    .await
}

pub async fn remove_station(ctx: &Ctx, fc: &str, station: &str) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(fc), "station.remove", station, async {
        ctx.caller.require_intermediary()?;
        ctx.store()
            .remove_station(fc, station)
            .await
            .at(Place::new("stations.remove", fc, station))
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
    ctx.caller.require_ente(fc)?;
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

/// The receipt exactly as the Node sent it.
pub async fn receipt_xml(ctx: &Ctx, fc: &str, receipt_id: &str) -> Result<String, AppError> {
    ctx.caller.require_ente(fc)?;
    ctx.store()
        .receipt_xml(fc, receipt_id)
        .await
        .at(Place::new("receipts.xml", fc, receipt_id))
}

// ---------------------------------------------------------------- offices

/// A page of the Ente's offices, by code.
pub async fn list_offices(
    ctx: &Ctx,
    fc: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<Office>, AppError> {
    ctx.caller.require_ente(fc)?;
    let limit = registry_limit(limit)?;
    let at = Place::new("offices.list", fc, "");
    ctx.store().get_ente(fc).await.at(at)?;
    let all = ctx.store().list_offices(fc).await.at(at)?;
    paging::of_whole(all, cursor, limit, 1, |o| vec![o.code.clone()])
}

/// Creates or replaces an office (idempotent by code).
pub async fn put_office(ctx: &Ctx, fc: &str, office: &Office) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(fc), "office.put", &office.code, async {
        ctx.caller.require_ente(fc)?;
        ctx.store()
            .put_office(fc, office)
            .await
            .at(Place::new("offices.put", fc, &office.code))
    })
    .await
}

pub async fn delete_office(ctx: &Ctx, fc: &str, code: &str) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(fc), "office.delete", code, async {
        ctx.caller.require_ente(fc)?;
        ctx.store()
            .delete_office(fc, code)
            .await
            .at(Place::new("offices.delete", fc, code))
    })
    .await
}

// ---------------------------------------------------------------- catalogue

/// A page of the Ente's catalogue, by service code.
pub async fn list_services(
    ctx: &Ctx,
    fc: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<Service>, AppError> {
    ctx.caller.require_ente(fc)?;
    let limit = registry_limit(limit)?;
    let at = Place::new("services.list", fc, "");
    ctx.store().get_ente(fc).await.at(at)?;
    let all = ctx.store().list_services(fc).await.at(at)?;
    paging::of_whole(all, cursor, limit, 1, |s| vec![s.code.clone()])
}

pub async fn get_service(ctx: &Ctx, fc: &str, code: &str) -> Result<Service, AppError> {
    ctx.caller.require_ente(fc)?;
    ctx.store()
        .get_service(fc, code)
        .await
        .at(Place::new("services.get", fc, code))
}

/// Creates or replaces a catalogue service (idempotent by code).
pub async fn put_service(ctx: &Ctx, fc: &str, service: &Service) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(fc), "service.put", &service.code, async {
        ctx.caller.require_ente(fc)?;
        ctx.store()
            .put_service(fc, service)
            .await
            .at(Place::new("services.put", fc, &service.code))
    })
    .await
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
    ctx.caller.require_ente(fc)?;
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
    ctx.caller.require_ente(fc)?;
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
            ctx.caller.require_ente(fc)?;
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
    crate::audit::audited(ctx, Some(fc), "accertamento.load", "csv", async {
        ctx.caller.require_ente(fc)?;
        ctx.store()
            .put_accertamenti(fc, list)
            .await
            .at(Place::new("accertamenti.load", fc, ""))
    })
    .await
}
