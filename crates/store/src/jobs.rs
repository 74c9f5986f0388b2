//! The scheduled jobs' turns (`job_turns`): which process runs a job's
//! round when several share the database. A turn is taken by moving the
//! job's due time forward in one conditional UPDATE; on PostgreSQL the
//! second of two concurrent UPDATEs waits for the first's row lock, then
//! finds the due time moved and changes nothing; on SQLite the writer is
//! one at a time anyway. No election, no lease to renew: a process killed
//! during its round leaves that round's rest to the next due time, which
//! every job's round covers (each is a sweep of what is due by then).

use crate::{Result, Store, to_micros};
use chrono::{DateTime, Utc};

impl Store {
    /// Takes job `job`'s turn for `who` if it is due at `now`, and sets
    /// the next one `every` later. A job never seen before is first due
    /// at `first` (its row is made then).
    pub async fn take_job_turn(
        &self,
        job: &str,
        who: &str,
        now: DateTime<Utc>,
        every: chrono::Duration,
        first: DateTime<Utc>,
    ) -> Result<bool> {
        let now_us = to_micros(now);
        sqlx::query(
            "INSERT INTO job_turns (job, due_at) VALUES ($1, $2) ON CONFLICT (job) DO NOTHING",
        )
        .bind(job)
        .bind(to_micros(first))
        .execute(&self.writer)
        .await?;
        let taken = sqlx::query(
            "UPDATE job_turns SET due_at = $1, taken_by = $2, taken_at = $3
             WHERE job = $4 AND due_at <= $3",
        )
        .bind(to_micros(now + every))
        .bind(who)
        .bind(now_us)
        .bind(job)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }
}
