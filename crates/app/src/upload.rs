//! GPD's massive upload: a file of positions to create, update or delete,
//! accepted at once and worked through in the background as GPD's upload
//! service does: a chunk at a time through the same all-or-nothing use
//! cases as GPD v2's calls; a chunk refused whole is retried one position
//! at a time, so that one bad position does not sink its neighbours. Each
//! answer joins the report (status code, message, iupds); the upload also
//! appears in the supplies archive as a supply, with a row error for each
//! refused position.
//!
//! Positions created by an upload are published, as GPD's upload service
//! asks GPD to.

use crate::Ctx;
use crate::error::{AppError, At, Kind, Place, from_store};
use chrono::{DateTime, Utc};
use incasso_core::position::DebtPosition;
use incasso_store::{Store, SupplyError, SupplyRecord, UploadAnswer, UploadProgress, UploadRecord};
use serde::{Deserialize, Serialize};

/// Positions per call on many, as GPD v2 takes them.
const CHUNK: usize = crate::positions::MANY_LIMIT;
/// iupds per delete on many.
const DELETE_CHUNK: usize = crate::positions::DELETE_MANY_LIMIT;
/// The most items one file may carry, as GPD's upload service takes them.
pub const MAX_ITEMS: usize = 100_000;

/// What a file asks. Kept with the upload until it ends, as JSON, so that
/// an upload cut short resumes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Items {
    Create(Vec<DebtPosition>),
    Update(Vec<DebtPosition>),
    Delete(Vec<String>),
}

impl Items {
    fn len(&self) -> usize {
        match self {
            Items::Create(p) | Items::Update(p) => p.len(),
            Items::Delete(i) => i.len(),
        }
    }

    fn operation(&self) -> &'static str {
        match self {
            Items::Create(_) => "CREATE",
            Items::Update(_) => "UPDATE",
            Items::Delete(_) => "DELETE",
        }
    }
}

/// One answer of the report: these iupds got this status and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseEntry {
    pub status_code: u16,
    pub status_message: String,
    pub iupds: Vec<String>,
}

/// GPD's `OperationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationStatus {
    InProgress,
    Completed,
    CompletedWithWarnings,
    CompletedUnsuccessfully,
}

/// An upload as its status and report show it.
#[derive(Debug, Clone)]
pub struct Upload {
    pub file_id: String,
    pub submitted: i64,
    pub processed: i64,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub responses: Vec<ResponseEntry>,
    pub supply_id: i64,
}

impl Upload {
    /// In progress until every item has an answer; then whether all, some
    /// or none of the answers are successes.
    pub fn status(&self) -> OperationStatus {
        if self.ended_at.is_none() {
            return OperationStatus::InProgress;
        }
        let failed = |e: &ResponseEntry| e.status_code >= 400;
        if self.responses.iter().all(failed) && !self.responses.is_empty() {
            OperationStatus::CompletedUnsuccessfully
        } else if self.responses.iter().any(failed) {
            OperationStatus::CompletedWithWarnings
        } else {
            OperationStatus::Completed
        }
    }
}

/// The report's answers: the items' answers grouped by status and message,
/// in the order each first appears in the file.
fn responses_of(answers: Vec<UploadAnswer>) -> Vec<ResponseEntry> {
    let mut out: Vec<ResponseEntry> = Vec::new();
    for a in answers {
        match out
            .iter_mut()
            .find(|r| r.status_code == a.status_code && r.status_message == a.message)
        {
            Some(r) => r.iupds.push(a.iupd),
            None => out.push(ResponseEntry {
                status_code: a.status_code,
                status_message: a.message,
                iupds: vec![a.iupd],
            }),
        }
    }
    out
}

/// The broker must intermediate the Ente: one of the Ente's stations is
/// the broker's. Doors ask before reading a file, so that a stranger learns
/// nothing of it.
pub async fn check_broker(ctx: &Ctx, ente: &str, broker: &str) -> Result<(), AppError> {
    ctx.caller.require_ente(ente)?;
    let stations =
        ctx.store()
            .list_stations(ente)
            .await
            .at(Place::new("upload.broker", ente, broker))?;
    if stations.iter().any(|s| s.broker_id == broker) {
        Ok(())
    } else {
        Err(AppError::new(
            Kind::Forbidden,
            "BROKER_NOT_OF_ENTE",
            format!("l'intermediario {broker} non ha stazioni dell'ente {ente}"),
        ))
    }
}

/// A new file id: `{broker}_{ente}_{32 hex digits}`, as GPD makes them.
fn new_file_id(broker: &str, ente: &str) -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_ok() {
        return format!("{broker}_{ente}_{}", crate::keys::hex(&b));
    }
    // Without a random source the time is unique enough on one machine;
    // the primary key refuses a clash.
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(0);
    format!("{broker}_{ente}_{nanos:032x}")
}

/// Accepts a file (already read: its name and bytes, and what it asks)
/// and starts working through it; answers its file id at once.
pub async fn start(
    ctx: &Ctx,
    ente: &str,
    broker: &str,
    file_name: &str,
    file: &[u8],
    items: Items,
) -> Result<String, AppError> {
    crate::audit::audited(ctx, Some(ente), "gpd_upload.start", file_name, async {
        check_broker(ctx, ente, broker).await?;
        let (file_hash, size) = crate::supply::file_hash(file)
            .map_err(|e| AppError::internal(&Place::new("upload.start", ente, file_name), &e))?;
        let size_bytes = i64::try_from(size).unwrap_or(i64::MAX);
        let count = items.len();
        if count == 0 || count > MAX_ITEMS {
            return Err(AppError::invalid(
                "INVALID_DEBT_POSITIONS",
                format!("il file deve contenere da 1 a {MAX_ITEMS} elementi, ne contiene {count}"),
            ));
        }
        let now = ctx.now();
        let file_id = new_file_id(broker, ente);
        let owner = worker_token();
        let upload = UploadRecord {
            file_id: file_id.clone(),
            ente: ente.to_string(),
            broker: broker.to_string(),
            operation: items.operation().to_string(),
            supply_id: 0,
            submitted: count as i64,
            processed: 0,
            started_at: now,
            ended_at: None,
            owner,
            heartbeat: now,
        };
        // Each upload is its own supply: the same file sent twice is two
        // uploads, as in GPD, so the archive's hash carries the file id.
        let supply = SupplyRecord {
            layout: "gpd-massive-v2".into(),
            file_name: file_name.to_string(),
            file_hash: format!("{file_hash}/{file_id}"),
            size_bytes,
            started_at: now,
            message: format!("caricamento massivo GPD {file_id}"),
            ..SupplyRecord::default()
        };
        let place = Place::new("upload.start", ente, &file_id);
        let kept = serde_json::to_vec(&items).map_err(|e| AppError::internal(&place, &e))?;
        let supply_id = ctx
            .store()
            .begin_upload(&upload, &kept, &supply)
            .await
            .at(place)?;
        // The file id answers "accepted": the file must outlive a power
        // cut, so that the work resumes after it.
        ctx.store().durable().await.at(place)?;
        let work = Work {
            store: ctx.store().clone(),
            clock: ctx.app.clock,
            upload: UploadRecord {
                supply_id,
                ..upload
            },
            supply,
            items,
        };
        tokio::spawn(work.run_logged());
        Ok(file_id)
    })
    .await
}

/// A token naming one worker of one upload, for its claim.
fn worker_token() -> String {
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    format!("{}-{}", std::process::id(), crate::keys::hex(&b))
}

/// How long an upload's worker may stay silent before another process
/// takes the upload over: its progress is written after every chunk, each
/// well under a second.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Takes over the uploads whose worker died (a restart, a crash) and
/// resumes them where their last committed chunk left them. Answers how
/// many were taken over.
pub async fn resume_stale(
    store: &Store,
    clock: crate::Clock,
) -> Result<usize, incasso_store::StoreError> {
    let now = clock.now();
    let before = now - chrono::Duration::from_std(STALE_AFTER).unwrap_or_default();
    let mut resumed = 0;
    for record in store.stale_uploads(before).await? {
        let owner = worker_token();
        let Some(kept) = store
            .claim_upload(&record.file_id, &owner, now, before)
            .await?
        else {
            continue;
        };
        let items: Items = match serde_json::from_slice(&kept) {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(file_id = %record.file_id, error = %e, "GPD upload unreadable: not resumed");
                continue;
            }
        };
        let supply = store.supply(&record.ente, record.supply_id).await?;
        tracing::info!(file_id = %record.file_id, processed = record.processed, "GPD upload resumed");
        let work = Work {
            store: store.clone(),
            clock,
            upload: UploadRecord { owner, ..record },
            supply,
            items,
        };
        tokio::spawn(work.run_logged());
        resumed += 1;
    }
    Ok(resumed)
}

/// An upload being worked through.
struct Work {
    store: Store,
    clock: crate::Clock,
    upload: UploadRecord,
    supply: SupplyRecord,
    items: Items,
}

/// GPD's status code and message for an error of the use cases.
fn answer_of(e: &AppError) -> (u16, String) {
    let status = match e.kind {
        Kind::Invalid => 400,
        Kind::Unauthenticated => 401,
        Kind::Forbidden => 403,
        Kind::NotFound => 404,
        Kind::Conflict => 409,
        Kind::Unprocessable => 422,
        Kind::TooLarge => 413,
        Kind::Unavailable => 502,
        Kind::StoreUnavailable => 503,
        Kind::Gone => 410,
        Kind::Internal => 500,
    };
    (status, e.detail.clone())
}

impl Work {
    async fn run_logged(self) {
        let file_id = self.upload.file_id.clone();
        if let Err(e) = self.run().await {
            // Its progress so far is committed: once silent for
            // STALE_AFTER, a process resumes it from there.
            tracing::warn!(file_id = %file_id, error = %e, "GPD upload stopped");
        }
    }

    /// Works through the items from the first not yet processed; each
    /// chunk's writes commit with its progress and answers, so a stop
    /// anywhere leaves a state to resume, never a chunk applied twice.
    async fn run(self) -> Result<(), incasso_store::StoreError> {
        let items = &self.items;
        let (ok_status, chunk) = match items {
            Items::Create(_) => (201, CHUNK),
            Items::Update(_) => (200, CHUNK),
            Items::Delete(_) => (200, DELETE_CHUNK),
        };
        let keys: Vec<String> = match items {
            Items::Create(p) | Items::Update(p) => p.iter().map(|p| p.iupd.clone()).collect(),
            Items::Delete(i) => i.clone(),
        };
        let answer = |i: usize, status: u16, code: &str, message: &str| UploadAnswer {
            item: i as i64,
            status_code: status,
            code: code.to_string(),
            message: message.to_string(),
            iupd: keys[i].clone(),
        };
        let ok = ok_message(items);
        let mut start = usize::try_from(self.upload.processed)
            .unwrap_or(0)
            .min(keys.len());
        while start < keys.len() {
            let end = (start + chunk).min(keys.len());
            let all_ok = (start..end).map(|i| answer(i, ok_status, "", ok)).collect();
            if self.apply(start..end, all_ok, end).await.is_err() {
                // Refused whole: one position at a time, so that one bad
                // position does not sink its neighbours.
                for i in start..end {
                    if let Err(e) = self
                        .apply(i..i + 1, vec![answer(i, ok_status, "", ok)], i + 1)
                        .await
                    {
                        let (status, message) = answer_of(&e);
                        self.store
                            .record_upload_progress(
                                &self.progress(i + 1, vec![answer(i, status, e.code, &message)]),
                            )
                            .await?;
                    }
                }
            }
            start = end;
        }
        self.finish(keys.len() as i64).await
    }

    fn progress(&self, processed: usize, answers: Vec<UploadAnswer>) -> UploadProgress {
        UploadProgress {
            file_id: self.upload.file_id.clone(),
            owner: self.upload.owner.clone(),
            processed: processed as i64,
            answers,
            at: self.clock.now(),
        }
    }

    /// Closes the upload and its supply: counters, and a row error for each
    /// refused item (its line: its place in the file, from 1).
    async fn finish(mut self, done: i64) -> Result<(), incasso_store::StoreError> {
        let errors: Vec<SupplyError> = self
            .store
            .upload_answers(&self.upload.file_id)
            .await?
            .into_iter()
            .filter(|a| a.status_code >= 400)
            .map(|a| SupplyError {
                line: a.item + 1,
                field: "iupd".into(),
                value: a.iupd,
                code: a.code,
                message: a.message,
            })
            .collect();
        let failed = errors.len() as i64;
        let succeeded = done - failed;
        self.supply.status = match (succeeded, failed) {
            (_, 0) => "LOADED",
            (0, _) => "REJECTED",
            _ => "LOADED_WITH_ERRORS",
        }
        .into();
        self.supply.accepted = succeeded > 0;
        self.supply.rows_read = done;
        self.supply.rows_loaded = succeeded;
        self.supply.rows_rejected = failed;
        match self.items {
            Items::Create(_) => self.supply.positions_created = succeeded,
            Items::Update(_) => self.supply.positions_updated = succeeded,
            Items::Delete(_) => self.supply.positions_cancelled = succeeded,
        }
        self.supply.message = format!(
            "caricamento massivo GPD {}: {succeeded} riusciti, {failed} rifiutati",
            self.upload.file_id
        );
        self.supply.errors = errors;
        self.upload.processed = done;
        self.store
            .finish_upload(&self.upload, &self.supply, self.clock.now())
            .await
    }

    /// The items `range` through the use case on many, all or nothing,
    /// their progress (`processed`, `responses`) committed with them.
    async fn apply(
        &self,
        range: std::ops::Range<usize>,
        answers: Vec<UploadAnswer>,
        processed: usize,
    ) -> Result<(), AppError> {
        let (ente, now) = (self.upload.ente.as_str(), self.clock.now());
        let place = Place::new("upload.apply", ente, &self.upload.file_id);
        let progress = self.progress(processed, answers);
        let result = match &self.items {
            Items::Create(p) => self
                .store
                .create_positions(ente, p[range].to_vec(), now, true, Some(&progress))
                .await
                .map(drop),
            Items::Update(p) => self
                .store
                .replace_positions(ente, p[range].to_vec(), now, true, Some(&progress))
                .await
                .map(drop),
            Items::Delete(i) => {
                self.store
                    .delete_positions(ente, &i[range], Some(&progress))
                    .await
            }
        };
        // One position's error is told as its own, without the place in the
        // chunk, which the report does not need.
        result.map_err(|e| match e {
            incasso_store::StoreError::Item { source, .. } => from_store(*source, &place),
            other => from_store(other, &place),
        })
    }
}

fn ok_message(items: &Items) -> &'static str {
    match items {
        Items::Create(_) => "Debt position CREATED",
        Items::Update(_) => "Debt position UPDATED",
        Items::Delete(_) => "Debt position DELETED",
    }
}

/// The most a file may expand to, as GPD's upload service takes it.
pub const MAX_JSON_BYTES: usize = 100 * 1024 * 1024;

/// The JSON document of an uploaded ZIP, which must hold exactly one
/// `.json` file (of at most [`MAX_JSON_BYTES`]), as GPD wants it.
pub fn json_of_zip(file_name: &str, zip: Vec<u8>) -> Result<Vec<u8>, AppError> {
    if !file_name.to_ascii_lowercase().ends_with(".zip") {
        return Err(AppError::invalid(
            "NOT_A_ZIP_FILE",
            format!("file: '{file_name}' non è un file .zip"),
        ));
    }
    let (name, json) = incasso_bus::read::unzip_one(zip, "caricamento massivo GPD")
        .map_err(|e| AppError::invalid("INVALID_FILE", e.to_string()))?;
    if !name.to_ascii_lowercase().ends_with(".json") {
        return Err(AppError::invalid(
            "INVALID_FILE",
            format!("file: l'archivio deve contenere un file .json, contiene '{name}'"),
        ));
    }
    if json.len() > MAX_JSON_BYTES {
        return Err(AppError::invalid(
            "INVALID_FILE",
            format!("file: '{name}' supera i {} MiB", MAX_JSON_BYTES >> 20),
        ));
    }
    if json.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::invalid(
            "EMPTY_FILE",
            format!("file: '{name}' è vuoto"),
        ));
    }
    Ok(json)
}

/// An upload of this Ente and broker, as its status and report show it.
pub async fn get(ctx: &Ctx, ente: &str, broker: &str, file_id: &str) -> Result<Upload, AppError> {
    check_broker(ctx, ente, broker).await?;
    let place = Place::new("upload.get", ente, file_id);
    let r = ctx.store().upload(ente, broker, file_id).await.at(place)?;
    // The answers only once it ended: the report waits for the end.
    let answers = match r.ended_at {
        Some(_) => ctx.store().upload_answers(file_id).await.at(place)?,
        None => Vec::new(),
    };
    Ok(Upload {
        file_id: r.file_id,
        submitted: r.submitted,
        processed: r.processed,
        started_at: r.started_at,
        ended_at: r.ended_at,
        responses: responses_of(answers),
        supply_id: r.supply_id,
    })
}

/// The file ids of the uploads started between two days (Italian time,
/// both included, at most a week), `size` at a time after `after`, and
/// whether more follow. GPD keeps uploads for 60 days: a range wholly
/// before that is gone (410), one that begins before it is refused (400).
pub async fn list(
    ctx: &Ctx,
    ente: &str,
    broker: &str,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
    size: u32,
    after: Option<&str>,
) -> Result<(Vec<String>, bool), AppError> {
    use chrono::Days;
    check_broker(ctx, ente, broker).await?;
    let today = incasso_core::time::to_rome(ctx.now()).date();
    let to = to.unwrap_or(today);
    let from = from.unwrap_or_else(|| to - Days::new(6));
    if from > to {
        return Err(AppError::invalid(
            "BAD_DATE_RANGE",
            "from: deve precedere to",
        ));
    }
    if (to - from).num_days() > 6 {
        return Err(AppError::invalid(
            "BAD_DATE_RANGE",
            "from, to: al più 7 giorni, estremi compresi",
        ));
    }
    let cutoff = today - Days::new(60);
    if to < cutoff {
        return Err(AppError::new(
            Kind::Gone,
            "GONE",
            "i caricamenti di oltre 60 giorni fa non sono più disponibili",
        ));
    }
    if from < cutoff {
        return Err(AppError::invalid(
            "BAD_DATE_RANGE",
            format!("from: al più 60 giorni fa ({cutoff})"),
        ));
    }
    if !(100..=500).contains(&size) {
        return Err(AppError::invalid("BAD_SIZE", "size: da 100 a 500"));
    }
    let start = incasso_core::time::from_rome(from.and_hms_opt(0, 0, 0).unwrap_or_default());
    let end =
        incasso_core::time::from_rome((to + Days::new(1)).and_hms_opt(0, 0, 0).unwrap_or_default());
    let mut ids = ctx
        .store()
        .list_uploads(ente, broker, start, end, after, size + 1)
        .await
        .at(Place::new("upload.list", ente, broker))?;
    let more = ids.len() > size as usize;
    ids.truncate(size as usize);
    Ok((ids, more))
}
