//! The citizen portal's settings per Ente (migration 0020).

use crate::time::to_micros;
use crate::{Result, Store};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// An Ente's portal look and languages, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSettingsRecord {
    pub brand_colour: String,
    /// Besides Italian, as codes (`de`, `en`).
    pub languages: Vec<String>,
}

impl Store {
    pub async fn portal_settings(&self, ente: &str) -> Result<Option<PortalSettingsRecord>> {
        let row =
            sqlx::query("SELECT brand_colour, languages FROM portal_settings WHERE ente = $1")
                .bind(ente)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            let languages: String = r.try_get("languages")?;
            Ok(PortalSettingsRecord {
                brand_colour: r.try_get("brand_colour")?,
                languages: languages
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .transpose()
    }

    /// Whether the Ente has a logo, without reading it.
    pub async fn has_logo(&self, ente: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM ente_logos WHERE ente = $1")
            .bind(ente)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    pub async fn put_portal_settings(
        &self,
        ente: &str,
        s: &PortalSettingsRecord,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let languages = format!(",{},", s.languages.join(","));
        sqlx::query(
            "INSERT INTO portal_settings (ente, brand_colour, languages, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (ente) DO UPDATE SET brand_colour = excluded.brand_colour,
               languages = excluded.languages, updated_at = excluded.updated_at",
        )
        .bind(ente)
        .bind(&s.brand_colour)
        .bind(languages)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Records a rating left at the end of `procedure`.
    pub async fn add_portal_rating(
        &self,
        ente: &str,
        procedure: &str,
        stars: i32,
        remark: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO portal_ratings (ente, procedure, stars, remark, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ente)
        .bind(procedure)
        .bind(stars)
        .bind(remark)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Per procedure: how many ratings, and their average in hundredths
    /// of a star, since `since`.
    pub async fn portal_rating_summary(
        &self,
        ente: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT procedure, COUNT(*) AS n, SUM(stars) AS total FROM portal_ratings
             WHERE ente = $1 AND created_at >= $2 GROUP BY procedure ORDER BY procedure",
        )
        .bind(ente)
        .bind(to_micros(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n")?;
                let total: i64 = r.try_get("total")?;
                Ok((
                    r.try_get("procedure")?,
                    n,
                    if n > 0 { total * 100 / n } else { 0 },
                ))
            })
            .collect()
    }
}
