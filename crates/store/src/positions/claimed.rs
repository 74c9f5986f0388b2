//! A DigitPOS spontaneous payment's position written in one transaction
//! with everything its request leaves behind: the idempotency key claimed,
//! the spontaneous request recorded, the IUV reserved, the position and its
//! events, and the audit event. On SQLite's single writer each of those was
//! a turn of its own; together they are one (perf, `bench digitpos`).

use super::*;
use crate::digitpos::SpontaneousClaim;

impl Store {
    /// [`Store::create_position_placed`] (published at once) with
    /// `with` written in the same transaction. Answers `None`, having
    /// written nothing, when the idempotency key, the spontaneous request
    /// or the position is there already: a retry, a concurrent twin or a
    /// request whose process died, which the caller handles one step at a
    /// time as before.
    pub async fn create_spontaneous_claimed(
        &self,
        ente: &str,
        mut position: DebtPosition,
        placement: Placement,
        now: DateTime<Utc>,
        with: &SpontaneousClaim<'_>,
    ) -> Result<Option<StoredPosition>> {
        let now = from_micros(to_micros(now));
        // Both read at once: the create call's latency is a target.
        let (segregation_codes, placement) = tokio::join!(
            self.prepare_new(ente, &mut position, now, true),
            self.check_placement(ente, placement)
        );
        let (segregation_codes, placement) = (segregation_codes?, placement?);
        let wanted: Vec<bool> = position.options.iter().map(|o| o.iuv.is_none()).collect();
        let count = wanted.iter().filter(|w| **w).count() as u32;
        let mut attempt = 0;
        loop {
            // PostgreSQL reserves IUVs in their own short transaction, as
            // every create does, so that concurrent creates do not queue
            // on the sequence's row for the length of this one; SQLite has
            // one writer anyway, and reserves inside (one turn, no gap).
            let mut reserved = match (self.dialect, segregation_codes.first()) {
                (crate::Dialect::Postgres, Some(seg)) if count > 0 => {
                    Some(self.allocate_notice_numbers(ente, *seg, count).await?)
                }
                (crate::Dialect::Postgres, _) => Some(Vec::new()),
                _ => None,
            };
            let mut tx = self.write_tx().await?;
            let claimed = sqlx::query(
                "INSERT INTO digitpos_idempotency
                   (ente, caller, idempotency_key, fingerprint, state, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (ente, caller, idempotency_key) DO NOTHING",
            )
            .bind(ente)
            .bind(with.caller)
            .bind(with.idempotency_key)
            .bind(with.fingerprint)
            .bind(crate::digitpos::PENDING)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !claimed {
                return Ok(None);
            }
            let recorded = sqlx::query(
                "INSERT INTO spontaneous_requests
                   (ente, request_id, service_code, iupd, state, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ente, request_id) DO NOTHING",
            )
            .bind(ente)
            .bind(with.request_id)
            .bind(with.service_code)
            .bind(&position.iupd)
            .bind(crate::SPONTANEOUS_OPEN)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !recorded {
                return Ok(None);
            }
            // Reserved in the transaction: a rollback gives the numbers
            // back, so no gap is left either.
            let mut fresh = match (reserved.take(), segregation_codes.first()) {
                (Some(numbers), _) => numbers,
                (None, Some(seg)) if count > 0 => {
                    let next = crate::iuv::reservation(ente, *seg, count)
                        .into_any()
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get::<i64, _>(0)?;
                    crate::iuv::reserved(*seg, count, next)?
                }
                _ => Vec::new(),
            }
            .into_iter();
            hand_out_notice_numbers(&mut position, &wanted, &mut fresh)?;
            match insert_position(&mut tx, ente, &position, &placement, now).await {
                Ok(id) => {
                    let stored = StoredPosition {
                        id,
                        version: 1,
                        position,
                        placement,
                    };
                    let events =
                        crate::notify::published_events(&mut tx, ente, &[(&stored, false)]).await?;
                    crate::events::write(&mut tx, &events, now).await?;
                    let a = with.audit;
                    sqlx::query(
                        "INSERT INTO audit_log (at, actor, ente, action, object, outcome, detail)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(to_micros(a.at))
                    .bind(&a.actor)
                    .bind(a.ente.as_deref())
                    .bind(&a.action)
                    .bind(&a.object)
                    .bind(&a.outcome)
                    .bind(&a.detail)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(Some(stored));
                }
                Err(InsertError::Iupd) => return Ok(None),
                Err(InsertError::Iuv(iuv)) => {
                    drop(tx);
                    attempt += 1;
                    let generated = position
                        .options
                        .iter()
                        .zip(&wanted)
                        .any(|(o, w)| *w && o.iuv.as_deref() == Some(iuv.as_str()));
                    if !generated || attempt >= IUV_RETRIES {
                        return Err(iuv_taken(&iuv));
                    }
                    tracing::warn!(
                        "generated IUV already used by an application; moving the sequence past it"
                    );
                    self.skip_sequence_past_used(ente, &iuv).await?;
                    for (option, want) in position.options.iter_mut().zip(&wanted) {
                        if *want {
                            option.iuv = None;
                            option.notice_number = None;
                        }
                    }
                }
                Err(InsertError::Other(e)) => return Err(e),
            }
        }
    }
}
