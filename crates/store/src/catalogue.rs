//! The service catalogue and the accertamenti.

use crate::{Result, Store, StoreError};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::error::codes;
use incasso_core::{FieldError, Invalid};
use sqlx::Row;
use sqlx::any::AnyRow;

fn service_from_row(r: &AnyRow) -> Result<Service> {
    let year: Option<i64> = r.try_get("accertamento_year")?;
    let code: Option<String> = r.try_get("accertamento_code")?;
    Ok(Service {
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        office_code: r.try_get("office_code")?,
        taxonomy_code: r.try_get("taxonomy_code")?,
        default_accertamento: match (year, code) {
            (Some(year), Some(code)) => Some(AccertamentoRef {
                year: year as i32,
                code,
            }),
            _ => None,
        },
        iban: r.try_get("iban")?,
        fixed_amount: r.try_get::<Option<i64>, _>("fixed_amount")?.map(Cents),
        spontaneous: r.try_get::<i64, _>("spontaneous")? != 0,
        pagopa_service_id: r.try_get("pagopa_service_id")?,
        active: r.try_get::<i64, _>("active")? != 0,
    })
}

fn accertamento_from_row(r: &AnyRow) -> Result<Accertamento> {
    Ok(Accertamento {
        year: r.try_get::<i64, _>("year")? as i32,
        code: r.try_get("code")?,
        description: r.try_get("description")?,
        chapter: r.try_get("chapter")?,
        article: r.try_get("article")?,
        siope_code: r.try_get("siope_code")?,
        active: r.try_get::<i64, _>("active")? != 0,
    })
}

/// Creates or replaces one accertamento, by year and code (checked by the
/// caller).
async fn upsert_accertamento(
    conn: &mut sqlx::AnyConnection,
    ente: &str,
    acc: &Accertamento,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO accertamenti (ente, year, code, description, chapter, article, active,
            siope_code)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (ente, year, code) DO UPDATE SET description = excluded.description,
            chapter = excluded.chapter, article = excluded.article, active = excluded.active,
            siope_code = excluded.siope_code",
    )
    .bind(ente)
    .bind(i64::from(acc.year))
    .bind(&acc.code)
    .bind(&acc.description)
    .bind(&acc.chapter)
    .bind(&acc.article)
    .bind(i64::from(acc.active))
    .bind(&acc.siope_code)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const SERVICE_COLUMNS: &str = "code, name, office_code, taxonomy_code, accertamento_year, accertamento_code, iban, fixed_amount, spontaneous, active, pagopa_service_id";

impl Store {
    /// Creates or replaces a catalogue service (idempotent by its code). The
    /// office and the default accertamento it names must exist.
    pub async fn put_service(&self, ente: &str, service: &Service) -> Result<()> {
        service.validate()?;
        self.get_ente(ente).await?;
        let mut problems = Vec::new();
        if let Some(office) = &service.office_code {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM offices WHERE ente = $1 AND code = $2")
                    .bind(ente)
                    .bind(office)
                    .fetch_optional(&self.pool)
                    .await?;
            if found.is_none() {
                problems.push(FieldError {
                    field: "officeCode".into(),
                    code: codes::BAD_FORMAT,
                    message: format!("l'ufficio '{office}' non esiste"),
                });
            }
        }
        if let Some(acc) = &service.default_accertamento
            && !self.accertamento_exists(ente, acc).await?
        {
            problems.push(FieldError {
                field: "defaultAccertamento".into(),
                code: codes::UNKNOWN_ACCERTAMENTO,
                message: format!("l'accertamento {}/{} non esiste", acc.year, acc.code),
            });
        }
        if !problems.is_empty() {
            return Err(Invalid(problems).into());
        }
        sqlx::query(
            "INSERT INTO services (ente, code, name, office_code, taxonomy_code, accertamento_year,
                accertamento_code, iban, fixed_amount, spontaneous, active, pagopa_service_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (ente, code) DO UPDATE SET name = excluded.name,
                office_code = excluded.office_code, taxonomy_code = excluded.taxonomy_code,
                accertamento_year = excluded.accertamento_year,
                accertamento_code = excluded.accertamento_code, iban = excluded.iban,
                fixed_amount = excluded.fixed_amount, spontaneous = excluded.spontaneous,
                active = excluded.active, pagopa_service_id = excluded.pagopa_service_id",
        )
        .bind(ente)
        .bind(&service.code)
        .bind(&service.name)
        .bind(&service.office_code)
        .bind(&service.taxonomy_code)
        .bind(
            service
                .default_accertamento
                .as_ref()
                .map(|a| i64::from(a.year)),
        )
        .bind(
            service
                .default_accertamento
                .as_ref()
                .map(|a| a.code.clone()),
        )
        .bind(&service.iban)
        .bind(service.fixed_amount.map(|c| c.0))
        .bind(i64::from(service.spontaneous))
        .bind(i64::from(service.active))
        .bind(&service.pagopa_service_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn get_service(&self, ente: &str, code: &str) -> Result<Service> {
        let sql = format!("SELECT {SERVICE_COLUMNS} FROM services WHERE ente = $1 AND code = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .bind(code)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("servizio"))?;
        service_from_row(&row)
    }

    /// The active service with this pagoPA catalogue id, for
    /// `paDemandPaymentNotice`.
    pub async fn find_service_by_pagopa_id(
        &self,
        ente: &str,
        pagopa_id: &str,
    ) -> Result<Option<Service>> {
        let sql = format!(
            "SELECT {SERVICE_COLUMNS} FROM services WHERE ente = $1 AND pagopa_service_id = $2 AND active = 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .bind(pagopa_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| service_from_row(&r)).transpose()
    }

    pub async fn list_services(&self, ente: &str) -> Result<Vec<Service>> {
        let sql = format!("SELECT {SERVICE_COLUMNS} FROM services WHERE ente = $1 ORDER BY code");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ente)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(service_from_row).collect()
    }

    /// Creates or replaces an accertamento (idempotent by year and code).
    pub async fn put_accertamento(&self, ente: &str, acc: &Accertamento) -> Result<()> {
        acc.validate()?;
        self.get_ente(ente).await?;
        let mut conn = self.writer.acquire().await?;
        upsert_accertamento(&mut conn, ente, acc).await
    }

    /// Creates or replaces many accertamenti at once (a year's budget): all
    /// are checked first, then written in one transaction, so a bad entry
    /// leaves nothing half-loaded. Errors name the entry (`[3].chapter`).
    pub async fn put_accertamenti(&self, ente: &str, list: &[Accertamento]) -> Result<usize> {
        let mut errors = Vec::new();
        for (i, acc) in list.iter().enumerate() {
            if let Err(invalid) = acc.validate() {
                errors.extend(invalid.0.into_iter().map(|mut e| {
                    e.field = format!("[{i}].{}", e.field);
                    e
                }));
            }
        }
        if !errors.is_empty() {
            return Err(incasso_core::Invalid(errors).into());
        }
        self.get_ente(ente).await?;
        let mut tx = self.write_tx().await?;
        for acc in list {
            upsert_accertamento(&mut tx, ente, acc).await?;
        }
        tx.commit().await?;
        Ok(list.len())
    }

    pub async fn get_accertamento(
        &self,
        ente: &str,
        year: i32,
        code: &str,
    ) -> Result<Accertamento> {
        let row = sqlx::query(
            "SELECT year, code, description, chapter, article, siope_code, active FROM accertamenti
             WHERE ente = $1 AND year = $2 AND code = $3",
        )
        .bind(ente)
        .bind(i64::from(year))
        .bind(code)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("accertamento"))?;
        accertamento_from_row(&row)
    }

    pub async fn list_accertamenti(
        &self,
        ente: &str,
        year: Option<i32>,
    ) -> Result<Vec<Accertamento>> {
        let rows = sqlx::query(
            "SELECT year, code, description, chapter, article, siope_code, active FROM accertamenti
             WHERE ente = $1 AND ($2 = 0 OR year = $2) ORDER BY year, code",
        )
        .bind(ente)
        .bind(year.map(i64::from).unwrap_or(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(accertamento_from_row).collect()
    }

    pub(crate) async fn accertamento_exists(
        &self,
        ente: &str,
        acc: &AccertamentoRef,
    ) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM accertamenti WHERE ente = $1 AND year = $2 AND code = $3 AND active = 1",
        )
        .bind(ente)
        .bind(i64::from(acc.year))
        .bind(&acc.code)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }
}
