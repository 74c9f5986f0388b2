//! The back office's dashboard: collected, due and overdue amounts by
//! year, month, service, office and accertamento, and the anomalies that
//! wait for a person.
//!
//! The amounts come from the store's snapshot of the Ente's sums
//! (`store::dashboard`): summing a million options takes seconds, reading
//! the snapshot a few milliseconds. A snapshot is taken again when the
//! Ente's positions changed since: at once when that is quick, else in the
//! background while the page shows the last one with its time. Whether an
//! unpaid amount is overdue is decided now, from its due date, so the
//! figures never go stale by the clock alone.
//!
//! Months and years are those of the due date, in Rome's time: of what fell
//! due in a month, how much was collected, how much is still to be paid
//! before its due date passes (due) and how much after (overdue). Amounts
//! are the options' (what debtors pay); by accertamento, the quotas booked
//! on each (the part of an option booked on none shows as such).

use crate::error::{AppError, At, Place};
use crate::{Caller, Ctx};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use incasso_core::access::{Access, Area};
use incasso_core::money::Cents;
use incasso_store::Store;
use incasso_store::dashboard::{DashboardSnapshot, DashboardTotal, HOUR_MICROS, SupplyLine};
use std::collections::{BTreeMap, HashSet};
use std::sync::{LazyLock, Mutex};

/// A snapshot at least this old is taken again even when nothing seems
/// changed (a position removed leaves no trace in the watermark).
const MAX_AGE: Duration = Duration::minutes(10);
/// A snapshot that took longer than this to take is taken again in the
/// background, not while a person waits for the page.
const QUICK_MILLIS: i64 = 300;
/// How far back the supplies waiting for a person are looked for.
const SUPPLIES_SINCE_DAYS: i64 = 90;
/// The supplies waiting for a person listed by name.
const SUPPLIES_LISTED: u32 = 10;

/// Collected, due and overdue amounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub collected: Cents,
    /// Unpaid, its due date still to come.
    pub due: Cents,
    /// Unpaid, its due date passed.
    pub overdue: Cents,
}

impl Figures {
    fn add(&mut self, kind: Kind, amount: i64) {
        let slot = match kind {
            Kind::Collected => &mut self.collected,
            Kind::Due => &mut self.due,
            Kind::Overdue => &mut self.overdue,
        };
        slot.0 += amount;
    }

    pub fn is_zero(&self) -> bool {
        self.collected.0 == 0 && self.due.0 == 0 && self.overdue.0 == 0
    }

    /// The largest of the three.
    pub fn max(&self) -> i64 {
        self.collected.0.max(self.due.0).max(self.overdue.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Collected,
    Due,
    Overdue,
}

/// Figures of one thing (a service, an office, an accertamento): its code
/// (empty: none), its name, and its amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub code: String,
    pub name: String,
    pub figures: Figures,
}

/// The amounts of the dashboard's year.
#[derive(Debug, Clone, Default)]
pub struct Amounts {
    pub total: Figures,
    /// January to December.
    pub by_month: Vec<(u32, Figures)>,
    /// Every year with figures, oldest first (the year's choice aside).
    pub by_year: Vec<(i32, Figures)>,
    pub by_service: Vec<Group>,
    pub by_office: Vec<Group>,
    pub by_accertamento: Vec<Group>,
}

/// A kind of anomaly and how many wait: its code, its name, how many, the
/// amount they concern, and the page where they are handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyCount {
    pub code: String,
    pub label: String,
    pub count: i64,
    pub amount: Cents,
    pub link: &'static str,
}

/// What waits for a person. Each part is `None` when the operator's rights
/// do not open it.
#[derive(Debug, Clone, Default)]
pub struct Anomalies {
    /// The reconciliation's anomalies (sospesi without flows, payments
    /// without receipt...), by code.
    pub reconciliation: Option<Vec<AnomalyCount>>,
    /// Receipts flagged on arrival (double payments, unknown notices...).
    pub receipts: Option<Vec<AnomalyCount>>,
    /// Supplies of the last 90 days refused, failed, interrupted or loaded
    /// with errors: the newest, and how many in all.
    pub supplies: Option<(Vec<SupplyLine>, u64)>,
}

impl Anomalies {
    pub fn is_empty(&self) -> bool {
        self.reconciliation.as_ref().is_none_or(Vec::is_empty)
            && self.receipts.as_ref().is_none_or(Vec::is_empty)
            && self.supplies.as_ref().is_none_or(|(_, n)| *n == 0)
    }
}

/// The dashboard of one Ente for one year.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    pub year: i32,
    /// The years to choose from, newest first (always this year's).
    pub years: Vec<i32>,
    /// `None` when the operator may not read positions.
    pub amounts: Option<Amounts>,
    /// The operator's offices, when the amounts are limited to them.
    pub offices: Option<Vec<String>>,
    /// When the amounts were summed.
    pub as_of: Option<DateTime<Utc>>,
    pub anomalies: Anomalies,
}

/// The Ente's dashboard for `year` (this year by default, in Rome), as the
/// caller may see it: the amounts to whoever reads positions (an office
/// operator's own offices' only), each kind of anomaly to whoever reads
/// its area.
pub async fn dashboard(ctx: &Ctx, ente: &str, year: Option<i32>) -> Result<Dashboard, AppError> {
    // Anyone who works on the Ente sees its dashboard; what it shows
    // depends on their areas.
    match &ctx.caller {
        Caller::Operator(o) if o.rights.reaches(ente) => {}
        Caller::Operator(_) => return Err(AppError::forbidden()),
        other => other.require_ente(ente)?,
    }
    let at = Place::new("dashboard", ente, "");
    let store = ctx.store();
    store.get_ente(ente).await.at(at)?;
    let now = ctx.now();
    let this_year = incasso_core::time::to_rome(now).year();
    let year = year.unwrap_or(this_year);
    let may = |area| ctx.caller.require(ente, area, Access::Read).is_ok();
    let offices: Option<Vec<String>> = match &ctx.caller {
        Caller::Operator(o) => o.rights.office_scope().map(<[String]>::to_vec),
        _ => None,
    };
    let mut board = Dashboard {
        year,
        years: vec![this_year],
        offices: offices.clone(),
        ..Dashboard::default()
    };
    if may(Area::Positions) {
        let (snapshot, totals) = current_totals(store, ente, now).await.at(at)?;
        let names = Names::of(store, ente).await.at(at)?;
        let (amounts, years) = amounts(&totals, offices.as_deref(), year, now, &names);
        board.years = years;
        if !board.years.contains(&this_year) {
            board.years.push(this_year);
        }
        board.years.sort_unstable_by(|a, b| b.cmp(a));
        board.amounts = Some(amounts);
        board.as_of = Some(snapshot.computed_at);
    }
    // The reconciliation's and the receipts' anomalies are the whole
    // Ente's, not an office's: an operator limited to offices is not shown
    // them.
    if may(Area::Reporting) && offices.is_none() {
        let recon = store.dashboard_recon_anomalies(ente).await.at(at)?;
        board.anomalies.reconciliation = Some(
            recon
                .into_iter()
                .map(|(code, count, amount)| AnomalyCount {
                    label: recon_label(&code).to_string(),
                    code,
                    count,
                    amount: Cents(amount),
                    link: "/backoffice/tesoreria",
                })
                .collect(),
        );
        let receipts = store.dashboard_receipt_anomalies(ente).await.at(at)?;
        board.anomalies.receipts = Some(
            receipts
                .into_iter()
                .map(|(code, count, amount)| AnomalyCount {
                    label: receipt_label(&code).to_string(),
                    code,
                    count,
                    amount: Cents(amount),
                    link: "/backoffice/ricevute",
                })
                .collect(),
        );
    }
    if may(Area::Supplies) {
        let since = now - Duration::days(SUPPLIES_SINCE_DAYS);
        board.anomalies.supplies = Some(
            store
                .supplies_to_review(ente, since, SUPPLIES_LISTED)
                .await
                .at(at)?,
        );
    }
    Ok(board)
}

/// Enti whose snapshot is being taken in the background by this process.
static REFRESHING: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

/// The Ente's sums as of now when that is quick, else as of its last
/// snapshot (taken again in the background meanwhile), and when they were
/// summed.
///
/// Summing reads only; keeping a new snapshot is a write, done in the
/// background, so that the page never waits for the database's writer (a
/// supply loading on SQLite holds it for as long as it loads).
async fn current_totals(
    store: &Store,
    ente: &str,
    now: DateTime<Utc>,
) -> Result<(DashboardSnapshot, Vec<DashboardTotal>), incasso_store::StoreError> {
    let fresh = |store: &Store| {
        let (store, ente) = (store.clone(), ente.to_string());
        async move {
            let (snapshot, totals) = store.compute_dashboard(&ente, now).await?;
            let kept = (snapshot, totals.clone());
            tokio::spawn(async move {
                if let Err(e) = store.save_dashboard(&ente, &snapshot, &totals).await {
                    tracing::warn!(ente = %ente, error = %e, "dashboard snapshot not kept");
                }
            });
            Ok::<_, incasso_store::StoreError>(kept)
        }
    };
    let Some(snapshot) = store.dashboard_snapshot(ente).await? else {
        return fresh(store).await;
    };
    let watermark = store.positions_watermark(ente).await?;
    let changed = (snapshot.last_id, snapshot.last_update) != watermark
        || now - snapshot.computed_at > MAX_AGE;
    if changed && snapshot.millis <= QUICK_MILLIS {
        return fresh(store).await;
    }
    if changed {
        let first = REFRESHING
            .lock()
            .map(|mut busy| busy.insert(ente.to_string()))
            .unwrap_or(false);
        if first {
            let (store, ente) = (store.clone(), ente.to_string());
            tokio::spawn(async move {
                if let Err(e) = store.refresh_dashboard(&ente, Utc::now()).await {
                    tracing::warn!(ente = %ente, error = %e, "dashboard snapshot failed");
                }
                if let Ok(mut busy) = REFRESHING.lock() {
                    busy.remove(&ente);
                }
            });
        }
    }
    Ok((snapshot, store.dashboard_totals(ente).await?))
}

/// The names of the Ente's services, offices and accertamenti, by code.
struct Names {
    services: BTreeMap<String, String>,
    offices: BTreeMap<String, String>,
    accertamenti: BTreeMap<String, String>,
}

impl Names {
    async fn of(store: &Store, ente: &str) -> Result<Names, incasso_store::StoreError> {
        Ok(Names {
            services: store
                .list_services(ente)
                .await?
                .into_iter()
                .map(|s| (s.code, s.name))
                .collect(),
            offices: store
                .list_offices(ente)
                .await?
                .into_iter()
                .map(|o| (o.code, o.name))
                .collect(),
            accertamenti: store
                .list_accertamenti(ente, None)
                .await?
                .into_iter()
                .map(|a| (format!("{}/{}", a.year, a.code), a.description))
                .collect(),
        })
    }
}

/// The year's amounts from the snapshot's sums (those of `offices` only,
/// when given), and the years that have any.
fn amounts(
    totals: &[DashboardTotal],
    offices: Option<&[String]>,
    year: i32,
    now: DateTime<Utc>,
    names: &Names,
) -> (Amounts, Vec<i32>) {
    let mut by_year: BTreeMap<i32, Figures> = BTreeMap::new();
    let mut by_month: BTreeMap<u32, Figures> = (1..=12).map(|m| (m, Figures::default())).collect();
    let mut by_service: BTreeMap<String, Figures> = BTreeMap::new();
    let mut by_office: BTreeMap<String, Figures> = BTreeMap::new();
    let mut by_accertamento: BTreeMap<String, Figures> = BTreeMap::new();
    // What each (hour, service, office, paid) booked on accertamenti, to
    // tell the part booked on none.
    let mut booked: BTreeMap<(i64, &str, &str, bool), i64> = BTreeMap::new();
    let mut total = Figures::default();
    let now_hour = now.timestamp_micros().div_euclid(HOUR_MICROS);
    for t in totals {
        if let Some(mine) = offices
            && !mine.contains(&t.office_code)
        {
            continue;
        }
        let Some(due) = Utc.timestamp_micros(t.due_hour * HOUR_MICROS).single() else {
            continue;
        };
        let rome = incasso_core::time::to_rome(due);
        // An hour wholly past is overdue; the present one not yet.
        let kind = match (t.paid, t.due_hour < now_hour) {
            (true, _) => Kind::Collected,
            (false, true) => Kind::Overdue,
            (false, false) => Kind::Due,
        };
        if !t.accertamento.is_empty() {
            if rome.year() == year {
                by_accertamento
                    .entry(t.accertamento.clone())
                    .or_default()
                    .add(kind, t.amount);
                *booked
                    .entry((
                        t.due_hour,
                        t.service_code.as_str(),
                        t.office_code.as_str(),
                        t.paid,
                    ))
                    .or_default() += t.amount;
            }
            continue;
        }
        by_year.entry(rome.year()).or_default().add(kind, t.amount);
        if rome.year() != year {
            continue;
        }
        total.add(kind, t.amount);
        by_month
            .entry(rome.month())
            .or_default()
            .add(kind, t.amount);
        by_service
            .entry(t.service_code.clone())
            .or_default()
            .add(kind, t.amount);
        by_office
            .entry(t.office_code.clone())
            .or_default()
            .add(kind, t.amount);
    }
    // The part of the options booked on no accertamento.
    let mut unbooked = Figures::default();
    for t in totals.iter().filter(|t| t.accertamento.is_empty()) {
        if let Some(mine) = offices
            && !mine.contains(&t.office_code)
        {
            continue;
        }
        let Some(due) = Utc.timestamp_micros(t.due_hour * HOUR_MICROS).single() else {
            continue;
        };
        if incasso_core::time::to_rome(due).year() != year {
            continue;
        }
        let kind = match (t.paid, t.due_hour < now_hour) {
            (true, _) => Kind::Collected,
            (false, true) => Kind::Overdue,
            (false, false) => Kind::Due,
        };
        let on_some = booked
            .get(&(
                t.due_hour,
                t.service_code.as_str(),
                t.office_code.as_str(),
                t.paid,
            ))
            .copied()
            .unwrap_or(0);
        let rest = t.amount - on_some;
        if rest > 0 {
            unbooked.add(kind, rest);
        }
    }
    let group = |map: BTreeMap<String, Figures>, names: &BTreeMap<String, String>, none: &str| {
        let mut groups: Vec<Group> = map
            .into_iter()
            .filter(|(_, f)| !f.is_zero())
            .map(|(code, figures)| Group {
                name: if code.is_empty() {
                    none.to_string()
                } else {
                    names.get(&code).cloned().unwrap_or_else(|| code.clone())
                },
                code,
                figures,
            })
            .collect();
        // The largest first; those without a code last.
        groups.sort_by(|a, b| {
            a.code
                .is_empty()
                .cmp(&b.code.is_empty())
                .then(b.figures.max().cmp(&a.figures.max()))
                .then(a.code.cmp(&b.code))
        });
        groups
    };
    let mut by_accertamento = group(by_accertamento, &names.accertamenti, "");
    if !unbooked.is_zero() {
        by_accertamento.push(Group {
            code: String::new(),
            name: "Senza accertamento".into(),
            figures: unbooked,
        });
    }
    let years = by_year.keys().copied().collect();
    let amounts = Amounts {
        total,
        by_month: by_month.into_iter().collect(),
        by_year: by_year.into_iter().collect(),
        by_service: group(by_service, &names.services, "Senza servizio"),
        by_office: group(by_office, &names.offices, "Senza ufficio"),
        by_accertamento,
    };
    (amounts, years)
}

/// A reconciliation anomaly's name, as the tesoreria page tells it.
fn recon_label(code: &str) -> &str {
    match code {
        "MOVEMENT_WITHOUT_FLOW" => "Sospesi senza flusso",
        "AMOUNT_MISMATCH" => "Sospesi di importo diverso dal flusso",
        "FLOW_WITHOUT_MOVEMENT" => "Flussi senza sospeso",
        "DUPLICATE_MOVEMENT" => "Più sospesi per lo stesso flusso",
        "ACCOUNT_NOT_OF_ENTE" => "Movimenti su un conto non dell'ente",
        "UNKNOWN_IUV" => "Pagamenti di IUV sconosciuti",
        "PAYMENT_WITHOUT_RECEIPT" => "Pagamenti senza ricevuta",
        "LINE_AMOUNT_MISMATCH" => "Pagamenti di importo diverso dalla posizione",
        "DUPLICATE_PAYMENT" => "Pagamenti già rendicontati",
        "FLOW_PAYMENT_NOT_APPLIED" => "Pagamenti del flusso non applicati",
        "FLOW_INCONSISTENT" => "Flussi incoerenti",
        "MANUAL_TIE_MISMATCH" => "Regolarizzazioni manuali non più coerenti",
        other => other,
    }
}

/// A receipt anomaly's name.
fn receipt_label(code: &str) -> &str {
    match code {
        "DOUBLE_PAYMENT" => "Pagamenti doppi (da restituire)",
        "UNKNOWN_NOTICE" => "Ricevute di avvisi sconosciuti",
        "POSITION_CANCELLED" => "Pagamenti di posizioni annullate (da restituire)",
        "NOT_PAYABLE" => "Pagamenti di posizioni non pagabili",
        "AMOUNT_MISMATCH" => "Ricevute di importo diverso dall'avviso",
        "KO_OUTCOME" => "Ricevute con esito negativo",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(hour: i64, office: &str, acc: &str, paid: bool, amount: i64) -> DashboardTotal {
        DashboardTotal {
            due_hour: hour,
            service_code: "TARI".into(),
            office_code: office.into(),
            accertamento: acc.into(),
            paid,
            amount,
            items: 1,
        }
    }

    fn names() -> Names {
        Names {
            services: [("TARI".to_string(), "Tassa rifiuti".to_string())].into(),
            offices: BTreeMap::new(),
            accertamenti: BTreeMap::new(),
        }
    }

    /// Months in Rome's time, overdue by the hour, quotas and what no
    /// accertamento books, an office's own only.
    #[test]
    fn amounts_by_month_kind_accertamento_and_office() {
        let hour = |y, m, d, h| {
            Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
                .unwrap()
                .timestamp_micros()
                / HOUR_MICROS
        };
        let now = Utc.with_ymd_and_hms(2026, 6, 15, 10, 30, 0).unwrap();
        // 31 Jan 23:30 UTC is 1 February in Rome.
        let feb = hour(2026, 1, 31, 23);
        let june_past = hour(2026, 6, 15, 9);
        let june_now = hour(2026, 6, 15, 10);
        let totals = vec![
            total(feb, "UT", "", true, 10_000),
            total(feb, "UT", "2026/ACC", true, 6_000),
            total(june_past, "UT", "", false, 2_000),
            total(june_now, "UT", "", false, 3_000),
            total(june_now, "UR", "", false, 700),
            total(hour(2025, 3, 1, 12), "UT", "", true, 1),
        ];
        let (a, years) = amounts(&totals, None, 2026, now, &names());
        assert_eq!(years, vec![2025, 2026]);
        assert_eq!(a.total.collected, Cents(10_000));
        assert_eq!(a.total.overdue, Cents(2_000));
        assert_eq!(a.total.due, Cents(3_700));
        assert_eq!(a.by_month[1].1.collected, Cents(10_000), "February");
        assert_eq!(a.by_month[0].1, Figures::default());
        assert_eq!(a.by_service[0].name, "Tassa rifiuti");
        assert_eq!(a.by_office.len(), 2);
        assert_eq!(a.by_accertamento[0].code, "2026/ACC");
        assert_eq!(a.by_accertamento[0].figures.collected, Cents(6_000));
        let none = a.by_accertamento.last().unwrap();
        assert_eq!(
            (none.code.as_str(), none.figures.collected),
            ("", Cents(4_000))
        );
        assert_eq!(none.figures.due, Cents(3_700));
        let ut = ["UT".to_string()];
        let (mine, _) = amounts(&totals, Some(&ut), 2026, now, &names());
        assert_eq!(mine.total.due, Cents(3_000));
        assert_eq!(mine.by_office.len(), 1);
    }
}
