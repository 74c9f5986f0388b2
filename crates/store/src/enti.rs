//! Enti, their offices and their stations.

use crate::time::to_micros;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use incasso_core::ente::{Ente, Office, StationLink};
use sqlx::Row;
use sqlx::any::AnyRow;

fn ente_from_row(r: &AnyRow) -> Result<Ente> {
    Ok(Ente {
        fiscal_code: r.try_get("fiscal_code")?,
        name: r.try_get("name")?,
        ipa_code: r.try_get("ipa_code")?,
        iban: r.try_get("iban")?,
        postal_iban: r.try_get("postal_iban")?,
        cbill_code: r.try_get("cbill_code")?,
        email: r.try_get("email")?,
    })
}

const ENTE_COLUMNS: &str = "fiscal_code, name, ipa_code, iban, postal_iban, cbill_code, email";

impl Store {
    /// Creates an Ente; an existing fiscal code is a conflict.
    pub async fn create_ente(&self, ente: &Ente, now: DateTime<Utc>) -> Result<()> {
        ente.validate()?;
        let res = sqlx::query(
            "INSERT INTO enti (fiscal_code, name, ipa_code, iban, postal_iban, cbill_code, email, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&ente.fiscal_code)
        .bind(&ente.name)
        .bind(&ente.ipa_code)
        .bind(&ente.iban)
        .bind(&ente.postal_iban)
        .bind(&ente.cbill_code)
        .bind(&ente.email)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await
        .map_err(StoreError::from);
        match res {
            Err(e) if e.is_unique_violation() => Err(StoreError::Conflict(format!(
                "l'ente {} esiste già",
                ente.fiscal_code
            ))),
            other => other.map(|_| ()),
        }
    }

    pub async fn update_ente(&self, ente: &Ente, now: DateTime<Utc>) -> Result<()> {
        ente.validate()?;
        let res = sqlx::query(
            "UPDATE enti SET name = $2, ipa_code = $3, iban = $4, postal_iban = $5, cbill_code = $6,
             email = $7, updated_at = $8 WHERE fiscal_code = $1",
        )
        .bind(&ente.fiscal_code)
        .bind(&ente.name)
        .bind(&ente.ipa_code)
        .bind(&ente.iban)
        .bind(&ente.postal_iban)
        .bind(&ente.cbill_code)
        .bind(&ente.email)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound("ente"));
        }
        Ok(())
    }

    pub async fn get_ente(&self, fiscal_code: &str) -> Result<Ente> {
        let sql = format!("SELECT {ENTE_COLUMNS} FROM enti WHERE fiscal_code = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(fiscal_code)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("ente"))?;
        ente_from_row(&row)
    }

    pub async fn list_enti(&self) -> Result<Vec<Ente>> {
        let sql = format!("SELECT {ENTE_COLUMNS} FROM enti ORDER BY fiscal_code");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ente_from_row).collect()
    }

    /// Creates or replaces an office of the Ente (idempotent by its code).
    pub async fn put_office(&self, ente: &str, office: &Office) -> Result<()> {
        office.validate()?;
        self.get_ente(ente).await?;
        sqlx::query(
            "INSERT INTO offices (ente, code, name, email) VALUES ($1, $2, $3, $4)
             ON CONFLICT (ente, code) DO UPDATE SET name = excluded.name, email = excluded.email",
        )
        .bind(ente)
        .bind(&office.code)
        .bind(&office.name)
        .bind(&office.email)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn list_offices(&self, ente: &str) -> Result<Vec<Office>> {
        let rows =
            sqlx::query("SELECT code, name, email FROM offices WHERE ente = $1 ORDER BY code")
                .bind(ente)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(Office {
                    code: r.try_get("code")?,
                    name: r.try_get("name")?,
                    email: r.try_get("email")?,
                })
            })
            .collect()
    }

    pub async fn delete_office(&self, ente: &str, code: &str) -> Result<()> {
        let res = sqlx::query("DELETE FROM offices WHERE ente = $1 AND code = $2")
            .bind(ente)
            .bind(code)
            .execute(&self.writer)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound("ufficio"));
        }
        Ok(())
    }

    /// Connects the Ente through a station. The station id and the
    /// segregation code must each be new for the Ente: two stations sharing a
    /// segregation code would both claim the same notices.
    pub async fn add_station(
        &self,
        ente: &str,
        link: &StationLink,
        now: DateTime<Utc>,
    ) -> Result<()> {
        link.validate()?;
        self.get_ente(ente).await?;
        let res = sqlx::query(
            "INSERT INTO stations (ente, station_id, broker_id, segregation_code, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ente)
        .bind(&link.station_id)
        .bind(&link.broker_id)
        .bind(i64::from(link.segregation_code))
        .bind(to_micros(now))
        .execute(&self.writer)
        .await
        .map_err(StoreError::from);
        match res {
            Err(e) if e.is_unique_violation() => Err(StoreError::Conflict(format!(
                "l'ente ha già la stazione {} o il codice di segregazione {:02}",
                link.station_id, link.segregation_code
            ))),
            other => other.map(|_| ()),
        }
    }

    /// The Ente's stations, oldest first: the first one is the default that
    /// IUVs are generated for when the caller names none.
    pub async fn list_stations(&self, ente: &str) -> Result<Vec<StationLink>> {
        let rows = sqlx::query(
            "SELECT station_id, broker_id, segregation_code FROM stations WHERE ente = $1
             ORDER BY created_at, station_id",
        )
        .bind(ente)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let seg: i64 = r.try_get("segregation_code")?;
                Ok(StationLink {
                    station_id: r.try_get("station_id")?,
                    broker_id: r.try_get("broker_id")?,
                    segregation_code: u8::try_from(seg)
                        .map_err(|_| StoreError::Corrupt(format!("segregation code {seg}")))?,
                })
            })
            .collect()
    }

    /// The station's Node connection settings, as JSON (their type belongs
    /// to the pagopa crate; the store keeps them opaque). They hold
    /// credentials, so they are sealed at rest and opened here.
    pub async fn station_connection(&self, ente: &str, station_id: &str) -> Result<Option<String>> {
        let row: Option<Option<String>> = sqlx::query_scalar(
            "SELECT connection FROM stations WHERE ente = $1 AND station_id = $2",
        )
        .bind(ente)
        .bind(station_id)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(StoreError::NotFound("stazione"))?
            .map(|v| self.secrets.open(&v))
            .transpose()
    }

    /// Seals again, with the current key, every station connection not
    /// sealed with it: plain ones written before sealing, and those of the
    /// previous key during a rotation. Answers how many were resealed.
    pub async fn reseal_secrets(&self) -> Result<usize> {
        let Some(current) = &self.secrets.current else {
            return Ok(0);
        };
        let prefix = current.sealed_prefix();
        let rows = sqlx::query(
            "SELECT ente, station_id, connection FROM stations WHERE connection IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut resealed = 0;
        for r in rows {
            let value: String = r.try_get("connection")?;
            if value.starts_with(&prefix) {
                continue;
            }
            let plain = self.secrets.open(&value)?;
            let ente: String = r.try_get("ente")?;
            let station: String = r.try_get("station_id")?;
            self.set_station_connection(&ente, &station, Some(&plain))
                .await?;
            resealed += 1;
        }
        resealed += self.reseal_webhook_secrets().await?;
        resealed += self.reseal_notify_secrets().await?;
        Ok(resealed)
    }

    pub async fn set_station_connection(
        &self,
        ente: &str,
        station_id: &str,
        json: Option<&str>,
    ) -> Result<()> {
        let sealed = json.map(|j| self.secrets.seal(j)).transpose()?;
        let res =
            sqlx::query("UPDATE stations SET connection = $3 WHERE ente = $1 AND station_id = $2")
                .bind(ente)
                .bind(station_id)
                .bind(sealed)
                .execute(&self.writer)
                .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound("stazione"));
        }
        Ok(())
    }

    pub async fn remove_station(&self, ente: &str, station_id: &str) -> Result<()> {
        let res = sqlx::query("DELETE FROM stations WHERE ente = $1 AND station_id = $2")
            .bind(ente)
            .bind(station_id)
            .execute(&self.writer)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound("stazione"));
        }
        Ok(())
    }
}
