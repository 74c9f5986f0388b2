//! The back office's search of an Ente's positions, fast on a million of
//! them on both databases whatever the filters, and without trusting the
//! planners (SQLite has no statistics unless someone runs ANALYZE, and
//! PostgreSQL's may be stale after a big supply).
//!
//! A search takes one of two shapes, chosen by counting, capped, the
//! candidates of each filter that has an index (index entries only: a few
//! milliseconds even when there are millions):
//!
//! - **driven**: the most selective filter has at most [`DRIVE_LIMIT`]
//!   candidates. They are read through its index, the other filters are
//!   checked on each, and the survivors are sorted here. Bounded by the
//!   limit, and the count is exact.
//! - **walk**: every filter matches many positions (or there is none).
//!   The index of the sort order is walked in growing chunks, the filters
//!   checked on each position, until the page is full. Each filter matches
//!   at least one position in `DRIVE_LIMIT / positions`, so a page needs
//!   few chunks; the count is told only when it is cheap ("più di 10.000").
//!
//! The other filters are written inside a `CASE`, which neither planner
//! looks into for an index: the driving index, or the sort order's, is the
//! only one a query can use.

use crate::time::{from_micros, to_micros};
use crate::{Dialect, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use incasso_core::Cents;
use incasso_core::position::PositionStatus;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::HashMap;

/// Most candidates a search reads through its driving filter's index;
/// past it, the search walks the sort order instead.
pub const DRIVE_LIMIT: u64 = 5_000;
/// Counts are told up to this; past it, "more than".
pub const COUNT_CAP: u64 = 10_000;
/// Ids per statement when a page's positions are read by id.
const CHUNK: usize = 500;
/// The largest chunk of the sort order a walk reads at once.
const MAX_CHUNK: usize = 65_536;

/// The order of a search's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchSort {
    /// By insertion (incasso's id grows with it).
    #[default]
    Inserted,
    /// By the first due date.
    DueDate,
    /// By the debtor's name.
    DebtorName,
}

/// What the back office searches positions by. Every text is taken as
/// given (the application layer normalizes it); empty means no filter.
#[derive(Debug, Clone, Default)]
pub struct PositionSearch {
    pub debtor_fiscal_code: Option<String>,
    /// The start of the debtor's name, in any case.
    pub debtor_name: Option<String>,
    pub notice_number: Option<String>,
    pub iuv: Option<String>,
    pub iupd: Option<String>,
    pub service: Option<String>,
    pub office: Option<String>,
    /// The offices the caller is limited to; `None`: every position.
    pub office_scope: Option<Vec<String>>,
    /// In any of these states (as shown at `now`); any state when empty.
    pub statuses: Vec<PositionStatus>,
    /// With an option due in this range (inclusive).
    pub due_from: Option<DateTime<Utc>>,
    pub due_to: Option<DateTime<Utc>>,
    pub sort: SearchSort,
    pub descending: bool,
}

/// A position as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionRow {
    pub id: i64,
    pub iupd: String,
    pub debtor_name: String,
    pub debtor_fiscal_code: String,
    pub service_code: Option<String>,
    /// The catalogue's name of the service, when it is still there.
    pub service_name: Option<String>,
    pub office_code: Option<String>,
    pub office_name: Option<String>,
    /// What the debtor owes (the single solution, else all installments).
    pub amount: Cents,
    /// The first due date.
    pub due_date: DateTime<Utc>,
    /// As shown at the search's instant (time-driven and reported states
    /// included).
    pub status: PositionStatus,
    /// The first option's notice number.
    pub notice_number: Option<String>,
    pub options: i64,
    pub inserted_at: DateTime<Utc>,
}

/// How many positions a search found, as far as it is cheap to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchTotal {
    Exact(u64),
    /// More than this many.
    MoreThan(u64),
    Unknown,
}

#[derive(Debug, Clone)]
pub struct SearchPage {
    pub rows: Vec<PositionRow>,
    /// Positions follow this page.
    pub has_next: bool,
    pub total: SearchTotal,
    /// The search read as many positions as a page may without filling
    /// it: more may match, and the search should be narrowed.
    pub truncated: bool,
}

/// A bound value of a statement being written.
#[derive(Debug, Clone)]
enum Val {
    I(i64),
    S(String),
}

/// A statement's values, `$1` being the Ente. PostgreSQL refuses a value
/// the text does not use, so the instant of the search is bound only by
/// the conditions that read it.
struct Q {
    binds: Vec<Val>,
    now: i64,
    now_param: Option<String>,
}

impl Q {
    fn new(ente: &str, now: i64) -> Q {
        Q {
            binds: vec![Val::S(ente.to_string())],
            now,
            now_param: None,
        }
    }

    /// The search's instant, bound once.
    fn now(&mut self) -> String {
        if let Some(p) = &self.now_param {
            return p.clone();
        }
        let p = self.i(self.now);
        self.now_param = Some(p.clone());
        p
    }

    fn s(&mut self, v: &str) -> String {
        self.binds.push(Val::S(v.to_string()));
        format!("${}", self.binds.len())
    }

    fn i(&mut self, v: i64) -> String {
        self.binds.push(Val::I(v));
        format!("${}", self.binds.len())
    }

    fn list(&mut self, vs: &[String]) -> String {
        vs.iter().map(|v| self.s(v)).collect::<Vec<_>>().join(", ")
    }

    async fn fetch(self, store: &Store, sql: String) -> Result<Vec<AnyRow>> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in self.binds {
            q = match v {
                Val::I(i) => q.bind(i),
                Val::S(s) => q.bind(s),
            };
        }
        Ok(q.fetch_all(&store.pool).await?)
    }
}

/// The debtor's name as its index orders it: bytewise on both databases.
fn name_expr(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "UPPER(debtor_name)",
        Dialect::Postgres => "(UPPER(debtor_name) COLLATE \"C\")",
    }
}

/// A name prefix as the database's `UPPER` writes it: SQLite's changes
/// ASCII letters only, PostgreSQL's every letter.
fn name_key(dialect: Dialect, typed: &str) -> String {
    let typed = typed.split_whitespace().collect::<Vec<_>>().join(" ");
    match dialect {
        Dialect::Sqlite => typed.to_ascii_uppercase(),
        Dialect::Postgres => typed.to_uppercase(),
    }
}

/// The first string after every string that starts with `key`, bytewise
/// (its last character moved one up): `[key, next)` is the prefix's range.
fn next_prefix(key: &str) -> Option<String> {
    let mut chars: Vec<char> = key.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(up) = char::from_u32(last as u32 + 1) {
            chars.push(up);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// What a position in each stored state may show (stored states catch up
/// with time within a minute; reported ones are derived, never stored).
fn shown_states(stored: &str) -> &'static [PositionStatus] {
    use PositionStatus::*;
    match stored {
        "PUBLISHED" => &[Published, Valid, Expired],
        "VALID" => &[Valid, Expired],
        "EXPIRED" => &[Expired],
        "DRAFT" => &[Draft],
        "PARTIALLY_PAID" => &[PartiallyPaid],
        "PAID" => &[Paid, Reported],
        "REPORTED" => &[Reported],
        _ => &[Invalid],
    }
}

const STORED_STATES: [&str; 8] = [
    "DRAFT",
    "PUBLISHED",
    "VALID",
    "EXPIRED",
    "PARTIALLY_PAID",
    "PAID",
    "REPORTED",
    "INVALID",
];

/// One filter of a search.
#[derive(Debug, Clone)]
enum Filter {
    Iuv(String),
    Notice(String),
    Iupd(String),
    FiscalCode(String),
    /// The name's upper-case prefix and the first string past it.
    Name(String, Option<String>),
    /// In one of these offices and/or of this service: one filter, so that
    /// an office operator's search of another office's service counts
    /// none (one index has both).
    Place {
        offices: Option<Vec<String>>,
        service: Option<String>,
    },
    /// The stored states whose every shown state is asked (no more to
    /// check), those where some are (each position's shown state is
    /// checked), and the states asked.
    Status {
        whole: Vec<String>,
        partly: Vec<String>,
        asked: Vec<String>,
    },
    Due(i64, i64),
}

/// Where a filter's candidates come from.
enum Driver {
    /// A condition on `debt_positions` that its index answers.
    Positions(String),
    /// A condition on `payment_options` that its index answers; the
    /// candidates are its rows' `position_id`.
    Options(String),
}

impl Filter {
    fn status(asked: &[PositionStatus]) -> Filter {
        let mut whole = Vec::new();
        let mut partly = Vec::new();
        for stored in STORED_STATES {
            let shown = shown_states(stored);
            let wanted = shown.iter().filter(|s| asked.contains(s)).count();
            if wanted == shown.len() {
                whole.push(stored.to_string());
            } else if wanted > 0 {
                partly.push(stored.to_string());
            }
        }
        Filter::Status {
            whole,
            partly,
            asked: asked.iter().map(|s| s.as_str().to_string()).collect(),
        }
    }

    /// Known to match one position or none: no need to count.
    fn is_key(&self) -> bool {
        matches!(self, Filter::Iuv(_) | Filter::Notice(_) | Filter::Iupd(_))
    }

    /// Its driver finds exactly the positions the filter matches: a search
    /// it drives needs not check it again.
    fn drives_exactly(&self) -> bool {
        match self {
            Filter::Status { partly, .. } => partly.is_empty(),
            _ => true,
        }
    }

    /// A count of its driver is a count of the positions it matches.
    fn counts_exactly(&self) -> bool {
        // A due date counts options, and a position may have several.
        self.drives_exactly() && !matches!(self, Filter::Due(..))
    }

    /// The condition as an index answers it.
    fn driver(&self, q: &mut Q, dialect: Dialect) -> Driver {
        match self {
            Filter::Iuv(v) => Driver::Options(format!("ente = $1 AND iuv = {}", q.s(v))),
            Filter::Notice(v) => {
                Driver::Options(format!("ente = $1 AND notice_number = {}", q.s(v)))
            }
            Filter::Due(from, to) => Driver::Options(format!(
                "ente = $1 AND due_date >= {} AND due_date <= {}",
                q.i(*from),
                q.i(*to)
            )),
            Filter::Iupd(v) => Driver::Positions(format!("iupd = {}", q.s(v))),
            Filter::FiscalCode(v) => Driver::Positions(format!("debtor_fiscal_code = {}", q.s(v))),
            Filter::Name(key, next) => {
                let e = name_expr(dialect);
                let mut c = format!("{e} >= {}", q.s(key));
                if let Some(n) = next {
                    c.push_str(&format!(" AND {e} < {}", q.s(n)));
                }
                Driver::Positions(c)
            }
            Filter::Place { offices, service } => {
                let mut c = Vec::new();
                if let Some(os) = offices {
                    c.push(format!("office_code IN ({})", q.list(os)));
                }
                if let Some(s) = service {
                    c.push(format!("service_code = {}", q.s(s)));
                }
                Driver::Positions(c.join(" AND "))
            }
            Filter::Status { whole, partly, .. } => {
                let all: Vec<String> = whole.iter().chain(partly).cloned().collect();
                Driver::Positions(format!("status IN ({})", q.list(&all)))
            }
        }
    }

    /// The exact condition on one row of `debt_positions` (never with a
    /// bare `id`: a walk joins it with a chunk of ids).
    fn row(&self, q: &mut Q, dialect: Dialect) -> String {
        match self {
            Filter::Iuv(v) => format!(
                "EXISTS (SELECT 1 FROM payment_options o WHERE o.position_id = debt_positions.id AND o.iuv = {})",
                q.s(v)
            ),
            Filter::Notice(v) => format!(
                "EXISTS (SELECT 1 FROM payment_options o WHERE o.position_id = debt_positions.id AND o.notice_number = {})",
                q.s(v)
            ),
            Filter::Due(from, to) => format!(
                "EXISTS (SELECT 1 FROM payment_options o WHERE o.position_id = debt_positions.id
                    AND o.due_date >= {} AND o.due_date <= {})",
                q.i(*from),
                q.i(*to)
            ),
            Filter::Name(key, _) => format!(
                "SUBSTR({}, 1, {}) = {}",
                name_expr(dialect),
                key.chars().count(),
                q.s(key)
            ),
            Filter::Status {
                whole,
                partly,
                asked,
            } => {
                let mut c = Vec::new();
                if !whole.is_empty() {
                    c.push(format!("status IN ({})", q.list(whole)));
                }
                if !partly.is_empty() {
                    let now = q.now();
                    c.push(format!(
                        "(status IN ({}) AND {} IN ({}))",
                        q.list(partly),
                        super::effective_status_sql(&now),
                        q.list(asked)
                    ));
                }
                if c.is_empty() {
                    "1 = 0".into()
                } else {
                    format!("({})", c.join(" OR "))
                }
            }
            other => match other.driver(q, dialect) {
                Driver::Positions(c) => c,
                Driver::Options(_) => unreachable!("handled above"),
            },
        }
    }
}

/// `CASE WHEN <all> THEN 1 ELSE 0 END`: the filters, where no planner
/// looks for an index.
fn hidden(filters: &[&Filter], q: &mut Q, dialect: Dialect) -> String {
    if filters.is_empty() {
        return "1".into();
    }
    let conds: Vec<String> = filters
        .iter()
        .map(|f| format!("({})", f.row(q, dialect)))
        .collect();
    format!("(CASE WHEN {} THEN 1 ELSE 0 END)", conds.join(" AND "))
}

/// A position's place in a sort order: its key (then its id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    I(i64),
    S(String),
}

impl SearchSort {
    /// The sort key as its index has it. Names are compared bytewise on
    /// both databases, so the order sorted here is the order walked there.
    fn expr(self, dialect: Dialect) -> &'static str {
        match self {
            SearchSort::Inserted => "id",
            SearchSort::DueDate => "min_due_date",
            SearchSort::DebtorName => name_expr(dialect),
        }
    }

    fn key(self, r: &AnyRow) -> Result<Key> {
        Ok(match self {
            SearchSort::Inserted | SearchSort::DueDate => Key::I(r.try_get("k")?),
            SearchSort::DebtorName => Key::S(r.try_get("k")?),
        })
    }

    /// The key of a row, if the row has one (a candidate that failed its
    /// checks has none).
    fn opt_key(self, r: &AnyRow) -> Result<Option<Key>> {
        Ok(match self {
            SearchSort::Inserted | SearchSort::DueDate => {
                r.try_get::<Option<i64>, _>("k")?.map(Key::I)
            }
            SearchSort::DebtorName => r.try_get::<Option<String>, _>("k")?.map(Key::S),
        })
    }
}

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WalkEnd {
    /// It read the whole sort order: what it found is all there is.
    Exhausted,
    /// It found what it needed.
    Filled,
    /// It read as many positions as it was allowed to.
    Budget,
}

/// Positions a page's walk reads at most. Beyond them every filter matches
/// thousands of positions but their combination hardly any: the search
/// reads the fewest candidates whole when they are at most [`COUNT_CAP`],
/// else the page says it stopped, rather than read the Ente's whole
/// archive.
const WALK_BUDGET: usize = 25_000;

impl Store {
    /// A page of the Ente's positions that `search` finds at `now`: `take`
    /// of them after the first `skip`, in the search's order (ties by id).
    pub async fn search_positions(
        &self,
        ente: &str,
        search: &PositionSearch,
        skip: u64,
        take: u32,
        now: DateTime<Utc>,
    ) -> Result<SearchPage> {
        let take = u64::from(take.max(1));
        let need = (skip + take + 1) as usize;
        let (found, total, truncated) = self.find(ente, search, need, now, true).await?;
        let has_next = found.len() as u64 > skip + take;
        let ids: Vec<i64> = found
            .iter()
            .skip(skip as usize)
            .take(take as usize)
            .map(|(_, id)| *id)
            .collect();
        let rows = self.position_rows(ente, &ids, to_micros(now)).await?;
        Ok(SearchPage {
            rows,
            has_next,
            total,
            truncated,
        })
    }

    /// Every position `search` finds, in its order, for an export; `None`
    /// when there are more than `most`.
    pub async fn export_positions(
        &self,
        ente: &str,
        search: &PositionSearch,
        most: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<PositionRow>>> {
        let most = most as usize;
        let (found, _, _) = self.find(ente, search, most + 1, now, false).await?;
        if found.len() > most {
            return Ok(None);
        }
        let ids: Vec<i64> = found.iter().map(|(_, id)| *id).collect();
        Ok(Some(self.position_rows(ente, &ids, to_micros(now)).await?))
    }

    /// The first `need` positions `search` finds, what is known of their
    /// number, and whether a page's budget cut the search short.
    async fn find(
        &self,
        ente: &str,
        search: &PositionSearch,
        need: usize,
        now: DateTime<Utc>,
        page: bool,
    ) -> Result<(Vec<(Key, i64)>, SearchTotal, bool)> {
        let Some(filters) = filters_of(self.dialect, search) else {
            return Ok((Vec::new(), SearchTotal::Exact(0), false));
        };
        let now = to_micros(now);
        // The driving filter: a key at once, else the fewest candidates.
        let mut best: Option<(usize, u64)> =
            filters.iter().position(Filter::is_key).map(|i| (i, 1));
        let mut counts = Vec::new();
        if best.is_none() {
            for (i, f) in filters.iter().enumerate() {
                let n = self.count_candidates(ente, Some(f), now).await?;
                counts.push(n);
                if best.is_none_or(|(_, b)| n < b) {
                    best = Some((i, n));
                }
            }
        }
        // An export reads every match: whenever the fewest candidates are
        // within reach, they are fewer than the walk would read.
        let drive_limit = if page { DRIVE_LIMIT } else { COUNT_CAP };
        if let Some((i, n)) = best
            && n <= drive_limit
        {
            let found = self.driven(ente, &filters, i, search, now).await?;
            let total = SearchTotal::Exact(found.len() as u64);
            return Ok((found, total, false));
        }
        let budget = page.then_some(WALK_BUDGET);
        let (found, end) = self.walk(ente, &filters, search, need, now, budget).await?;
        if end == WalkEnd::Budget
            && let Some((i, n)) = best
            && n <= COUNT_CAP
        {
            // Dense filters, sparse together: the fewest candidates, read
            // whole, are fewer than the walk would still read.
            let found = self.driven(ente, &filters, i, search, now).await?;
            let total = SearchTotal::Exact(found.len() as u64);
            return Ok((found, total, false));
        }
        let total = match (end, filters.as_slice(), counts.first()) {
            (WalkEnd::Exhausted, _, _) => SearchTotal::Exact(found.len() as u64),
            // A count is cheap when one exact filter, or none, decides.
            (_, [], _) => match self.count_candidates(ente, None, now).await? {
                n if n > COUNT_CAP => SearchTotal::MoreThan(COUNT_CAP),
                n => SearchTotal::Exact(n),
            },
            (_, [only], Some(n)) if only.counts_exactly() && *n > COUNT_CAP => {
                SearchTotal::MoreThan(COUNT_CAP)
            }
            (_, [only], Some(n)) if only.counts_exactly() => SearchTotal::Exact(*n),
            _ => SearchTotal::Unknown,
        };
        Ok((found, total, end == WalkEnd::Budget))
    }

    /// How many positions `filter`'s index offers (all the Ente's when
    /// `None`), up to [`COUNT_CAP`] + 1: index entries only.
    async fn count_candidates(&self, ente: &str, filter: Option<&Filter>, now: i64) -> Result<u64> {
        let mut q = Q::new(ente, now);
        let inner = match filter.map(|f| f.driver(&mut q, self.dialect)) {
            None => "SELECT 1 FROM debt_positions WHERE ente = $1".to_string(),
            Some(Driver::Positions(c)) => {
                format!("SELECT 1 FROM debt_positions WHERE ente = $1 AND {c}")
            }
            Some(Driver::Options(c)) => format!("SELECT 1 FROM payment_options WHERE {c}"),
        };
        let sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ({inner} LIMIT {}) candidates",
            COUNT_CAP + 1
        );
        let rows = q.fetch(self, sql).await?;
        let n: i64 = match rows.first() {
            Some(r) => r.try_get("n")?,
            None => 0,
        };
        Ok(n as u64)
    }

    /// Every position that passes the filters, read through the index of
    /// filter `driving` (at most [`DRIVE_LIMIT`] candidates), sorted.
    async fn driven(
        &self,
        ente: &str,
        filters: &[Filter],
        driving: usize,
        search: &PositionSearch,
        now: i64,
    ) -> Result<Vec<(Key, i64)>> {
        let dialect = self.dialect;
        // The driver's own condition is checked again when its index only
        // narrows (a status's stored states, an option's due date).
        let checks: Vec<&Filter> = filters
            .iter()
            .enumerate()
            .filter(|(i, f)| *i != driving || !f.drives_exactly())
            .map(|(_, f)| f)
            .collect();
        let key = search.sort.expr(dialect);
        let mut found = Vec::new();
        let mut q = Q::new(ente, now);
        match filters[driving].driver(&mut q, dialect) {
            Driver::Positions(c) => {
                let rest = hidden(&checks, &mut q, dialect);
                let sql = format!(
                    "SELECT id, {key} AS k FROM debt_positions WHERE ente = $1 AND {c} AND {rest} = 1"
                );
                for r in q.fetch(self, sql).await? {
                    found.push((search.sort.key(&r)?, r.try_get::<i64, _>("id")?));
                }
            }
            Driver::Options(c) => {
                // Each candidate looked up by its id in a subquery of its
                // own: neither planner turns that into a scan of the table.
                let rest = hidden(&checks, &mut q, dialect);
                let sql = format!(
                    "SELECT c.pid AS id, (SELECT {key} FROM debt_positions
                        WHERE debt_positions.id = c.pid AND ente = $1 AND {rest} = 1) AS k
                     FROM (SELECT DISTINCT position_id AS pid FROM payment_options WHERE {c}
                           LIMIT {}) c",
                    COUNT_CAP + 1
                );
                for r in q.fetch(self, sql).await? {
                    if let Some(k) = search.sort.opt_key(&r)? {
                        found.push((k, r.try_get::<i64, _>("id")?));
                    }
                }
            }
        }
        found.sort();
        if search.descending {
            found.reverse();
        }
        Ok(found)
    }

    /// The first `need` positions that pass the filters, walking the sort
    /// order's index in chunks that grow fourfold; and whether the walk
    /// reached the end (then they are all there are).
    async fn walk(
        &self,
        ente: &str,
        filters: &[Filter],
        search: &PositionSearch,
        need: usize,
        now: i64,
        budget: Option<usize>,
    ) -> Result<(Vec<(Key, i64)>, WalkEnd)> {
        let dialect = self.dialect;
        let key = search.sort.expr(dialect);
        let desc = search.descending;
        let dir = if desc { "DESC" } else { "ASC" };
        // A name prefix sorted by name is a range of the walked index.
        let range = match search.sort {
            SearchSort::DebtorName => filters.iter().find(|f| matches!(f, Filter::Name(..))),
            _ => None,
        };
        let all: Vec<&Filter> = filters.iter().collect();
        let mut found = Vec::new();
        let mut after: Option<(Key, i64)> = None;
        let mut size = (need * 4).clamp(256, MAX_CHUNK);
        let mut read = 0;
        loop {
            if let Some(b) = budget {
                size = size.min(b - read);
            }
            let mut q = Q::new(ente, now);
            let mut conds = vec!["ente = $1".to_string()];
            if let Some(f) = range
                && let Driver::Positions(c) = f.driver(&mut q, dialect)
            {
                conds.push(c);
            }
            if let Some((k, id)) = &after {
                let kp = match k {
                    Key::I(v) => q.i(*v),
                    Key::S(v) => q.s(v),
                };
                let idp = q.i(*id);
                let (cmp, strict) = if desc { ("<=", "<") } else { (">=", ">") };
                // Not a row value: SQLite walks an expression's index only
                // on a plain range.
                conds.push(format!(
                    "{key} {cmp} {kp} AND ({key} {strict} {kp} OR id {strict} {idp})"
                ));
            }
            let hit = hidden(&all, &mut q, dialect);
            // Each position of the chunk looked up by its id in a subquery
            // of its own, never joined: a join of many ids may become a
            // scan of the table.
            let sql = format!(
                "SELECT chunk.id AS id, chunk.k AS k,
                    (SELECT {hit} FROM debt_positions WHERE debt_positions.id = chunk.id) AS hit
                 FROM (SELECT id, {key} AS k FROM debt_positions WHERE {}
                       ORDER BY {key} {dir}, id {dir} LIMIT {size}) chunk",
                conds.join(" AND ")
            );
            let rows = q.fetch(self, sql).await?;
            let mut chunk = Vec::with_capacity(rows.len());
            for r in &rows {
                chunk.push((
                    search.sort.key(r)?,
                    r.try_get::<i64, _>("id")?,
                    r.try_get::<i64, _>("hit")? == 1,
                ));
            }
            // The join kept the chunk, not its order.
            chunk.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            if desc {
                chunk.reverse();
            }
            let ended = chunk.len() < size;
            read += chunk.len();
            after = chunk.last().map(|(k, id, _)| (k.clone(), *id));
            found.extend(chunk.into_iter().filter(|c| c.2).map(|(k, id, _)| (k, id)));
            if found.len() >= need {
                found.truncate(need);
                return Ok((found, WalkEnd::Filled));
            }
            if ended {
                return Ok((found, WalkEnd::Exhausted));
            }
            if budget.is_some_and(|b| read >= b) {
                return Ok((found, WalkEnd::Budget));
            }
            size = (size * 4).min(MAX_CHUNK);
        }
    }

    /// The list's lines of positions `ids`, in that order.
    async fn position_rows(&self, ente: &str, ids: &[i64], now: i64) -> Result<Vec<PositionRow>> {
        let mut by_id = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let mut q = Q::new(ente, now);
            let status = super::effective_status_sql(&q.now());
            let list = chunk
                .iter()
                .map(|id| q.i(*id))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT debt_positions.id AS id, iupd, debtor_name, debtor_fiscal_code, service_code,
                    office_code, min_due_date, inserted_at, {status} AS shown,
                    (SELECT s.name FROM services s WHERE s.ente = debt_positions.ente
                        AND s.code = debt_positions.service_code) AS service_name,
                    (SELECT f.name FROM offices f WHERE f.ente = debt_positions.ente
                        AND f.code = debt_positions.office_code) AS office_label,
                    (SELECT CAST(COALESCE(MAX(CASE WHEN o.is_partial_payment = 0 THEN o.amount END),
                        SUM(o.amount)) AS BIGINT) FROM payment_options o
                        WHERE o.position_id = debt_positions.id) AS amount,
                    (SELECT CAST(COUNT(*) AS BIGINT) FROM payment_options o
                        WHERE o.position_id = debt_positions.id) AS options,
                    (SELECT o.notice_number FROM payment_options o
                        WHERE o.position_id = debt_positions.id
                        ORDER BY o.option_index LIMIT 1) AS first_notice
                 FROM debt_positions WHERE ente = $1 AND debt_positions.id IN ({list})"
            );
            for r in q.fetch(self, sql).await? {
                let shown: String = r.try_get("shown")?;
                let row = PositionRow {
                    id: r.try_get("id")?,
                    iupd: r.try_get("iupd")?,
                    debtor_name: r.try_get("debtor_name")?,
                    debtor_fiscal_code: r.try_get("debtor_fiscal_code")?,
                    service_code: r.try_get("service_code")?,
                    service_name: r.try_get("service_name")?,
                    office_code: r.try_get("office_code")?,
                    office_name: r.try_get("office_label")?,
                    amount: Cents(r.try_get::<Option<i64>, _>("amount")?.unwrap_or(0)),
                    due_date: from_micros(r.try_get("min_due_date")?),
                    status: shown
                        .parse()
                        .map_err(|_| StoreError::Corrupt(format!("position status {shown}")))?,
                    notice_number: r.try_get("first_notice")?,
                    options: r.try_get("options")?,
                    inserted_at: from_micros(r.try_get("inserted_at")?),
                };
                by_id.insert(row.id, row);
            }
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }
}

/// The search's filters; `None` when it can find nothing (an office
/// outside the caller's scope, an empty scope, an empty name).
fn filters_of(dialect: Dialect, s: &PositionSearch) -> Option<Vec<Filter>> {
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let mut out = Vec::new();
    if let Some(v) = given(&s.iuv) {
        out.push(Filter::Iuv(v.to_string()));
    }
    if let Some(v) = given(&s.notice_number) {
        out.push(Filter::Notice(v.to_string()));
    }
    if let Some(v) = given(&s.iupd) {
        out.push(Filter::Iupd(v.to_string()));
    }
    if let Some(v) = given(&s.debtor_fiscal_code) {
        out.push(Filter::FiscalCode(v.to_string()));
    }
    if let Some(v) = given(&s.debtor_name) {
        let key = name_key(dialect, v);
        let next = next_prefix(&key);
        out.push(Filter::Name(key, next));
    }
    let offices = match (given(&s.office), &s.office_scope) {
        (Some(o), Some(scope)) if !scope.iter().any(|x| x == o) => return None,
        (Some(o), _) => Some(vec![o.to_string()]),
        (None, Some(scope)) if scope.is_empty() => return None,
        (None, Some(scope)) => Some(scope.clone()),
        (None, None) => None,
    };
    let service = given(&s.service).map(str::to_string);
    if offices.is_some() || service.is_some() {
        out.push(Filter::Place { offices, service });
    }
    if !s.statuses.is_empty() {
        out.push(Filter::status(&s.statuses));
    }
    if s.due_from.is_some() || s.due_to.is_some() {
        let from = s.due_from.map(to_micros).unwrap_or(i64::MIN);
        let to = s.due_to.map(to_micros).unwrap_or(i64::MAX);
        if from > to {
            return None;
        }
        out.push(Filter::Due(from, to));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_holds_exactly_the_names_that_start_with_it() {
        assert_eq!(next_prefix("ROSSI").as_deref(), Some("ROSSJ"));
        assert_eq!(next_prefix("ROSSI ").as_deref(), Some("ROSSI!"));
        assert_eq!(next_prefix("À").as_deref(), Some("Á"));
        assert_eq!(name_key(Dialect::Sqlite, "  rossi   mario "), "ROSSI MARIO");
        assert_eq!(name_key(Dialect::Sqlite, "nicolò"), "NICOLò");
        assert_eq!(name_key(Dialect::Postgres, "nicolò"), "NICOLÒ");
    }

    #[test]
    fn an_office_outside_the_scope_finds_nothing() {
        let s = PositionSearch {
            office: Some("ANAG".into()),
            office_scope: Some(vec!["TRIB".into()]),
            ..Default::default()
        };
        assert!(filters_of(Dialect::Sqlite, &s).is_none());
        let s = PositionSearch {
            office_scope: Some(vec![]),
            ..Default::default()
        };
        assert!(filters_of(Dialect::Sqlite, &s).is_none());
        let s = PositionSearch {
            office: Some("TRIB".into()),
            office_scope: Some(vec!["TRIB".into()]),
            ..Default::default()
        };
        assert_eq!(filters_of(Dialect::Sqlite, &s).unwrap().len(), 1);
    }
}
