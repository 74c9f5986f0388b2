//! The dashboard (cruscotto), the back office's home page: collected, due
//! and overdue amounts of a year by month, year, service, office and
//! accertamento, as bar charts drawn here in SVG (no script: the page
//! works as it arrives), each followed by a table of the same figures; and
//! the anomalies that wait for a person, each linking to its page.
//!
//! The charts are images to assistive technologies (`role="img"`, named
//! by their `<title>` and described by a `<desc>` that tells the totals);
//! the tables beside them hold every figure. Colours come from classes of
//! `incasso.css` (the CSP allows no inline style), and the legend names
//! each colour, so nothing is told by colour alone.

use super::ui::Chrome;
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use incasso_app::dashboard::{Dashboard, Figures, Group};
use incasso_core::money::Cents;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new().route("/backoffice/", get(home))
}

const MONTHS: [&str; 12] = [
    "gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic",
];
const MONTH_NAMES: [&str; 12] = [
    "Gennaio",
    "Febbraio",
    "Marzo",
    "Aprile",
    "Maggio",
    "Giugno",
    "Luglio",
    "Agosto",
    "Settembre",
    "Ottobre",
    "Novembre",
    "Dicembre",
];
/// Groups drawn in a chart of services, offices or accertamenti; the
/// table below lists them all.
const GROUPS_DRAWN: usize = 10;

/// A row of a figures table: its label and the three amounts, in Italian.
struct Line {
    label: String,
    href: Option<String>,
    collected: String,
    due: String,
    overdue: String,
}

impl Line {
    fn of(label: impl Into<String>, f: &Figures) -> Line {
        Line {
            label: label.into(),
            href: None,
            collected: euro(f.collected),
            due: euro(f.due),
            overdue: euro(f.overdue),
        }
    }
}

/// A chart with its table.
struct Chart {
    id: &'static str,
    heading: String,
    /// What the first column of the table holds.
    first_column: &'static str,
    /// The SVG markup, made here from numbers and escaped text.
    svg: String,
    lines: Vec<Line>,
}

/// An anomaly as the page lists it.
struct Waiting {
    label: String,
    count: String,
    amount: Option<String>,
    href: String,
}

#[derive(Template)]
#[template(path = "backoffice/home.html")]
struct HomePage {
    chrome: Chrome,
    year: i32,
    years: Vec<i32>,
    /// Why the year asked for was not taken.
    year_error: Option<String>,
    amounts: bool,
    total: Option<Line>,
    charts: Vec<Chart>,
    as_of: String,
    offices: Option<String>,
    /// Each part is absent when the operator's rights do not open it.
    reconciliation: Option<Vec<Waiting>>,
    receipts: Option<Vec<Waiting>>,
    supplies: Option<Vec<Waiting>>,
    supplies_total: String,
    nothing_waits: bool,
}

#[derive(Deserialize, Default)]
struct HomeQuery {
    #[serde(default)]
    anno: String,
}

async fn home(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<HomeQuery>,
) -> Response {
    let chrome = signed.chrome(&state, "/backoffice/").await;
    let Some(ente) = signed.ente.clone() else {
        // The intermediary with no Ente yet: only the frame.
        return page(&HomePage::empty(chrome));
    };
    let asked = q.anno.trim();
    let (year, year_error) = match asked.parse::<i32>() {
        _ if asked.is_empty() => (None, None),
        Ok(y) if (2000..=2100).contains(&y) => (Some(y), None),
        _ => (
            None,
            Some(format!(
                "Anno: «{}» non è un anno tra il 2000 e il 2100; sono mostrati i dati dell'anno in corso.",
                asked.chars().take(20).collect::<String>()
            )),
        ),
    };
    let ctx = signed.ctx(&state);
    let board = match incasso_app::dashboard::dashboard(&ctx, &ente, year).await {
        Ok(b) => b,
        Err(e) => return error_page(chrome, &e),
    };
    let status = if year_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    super::ui::page_with_status(&HomePage::of(chrome, board, year_error), status)
}

impl HomePage {
    fn empty(chrome: Chrome) -> HomePage {
        HomePage {
            chrome,
            year: 0,
            years: Vec::new(),
            year_error: None,
            amounts: false,
            total: None,
            charts: Vec::new(),
            as_of: String::new(),
            offices: None,
            reconciliation: None,
            receipts: None,
            supplies: None,
            supplies_total: String::new(),
            nothing_waits: true,
        }
    }

    fn of(chrome: Chrome, board: Dashboard, year_error: Option<String>) -> HomePage {
        let year = board.year;
        let mut charts = Vec::new();
        let mut total = None;
        if let Some(a) = &board.amounts {
            total = Some(Line::of(format!("Totale {year}"), &a.total));
            let months: Vec<(String, Figures)> = a
                .by_month
                .iter()
                .map(|(m, f)| (MONTHS[(*m as usize - 1) % 12].to_string(), *f))
                .collect();
            charts.push(Chart {
                id: "mesi",
                heading: format!("Per mese di scadenza, {year}"),
                first_column: "Mese",
                svg: columns_svg(
                    "mesi",
                    &format!("Importi per mese di scadenza, {year}"),
                    &a.total,
                    &months,
                ),
                lines: a
                    .by_month
                    .iter()
                    .map(|(m, f)| Line::of(MONTH_NAMES[(*m as usize - 1) % 12], f))
                    .collect(),
            });
            let years: Vec<(String, Figures)> =
                a.by_year.iter().map(|(y, f)| (y.to_string(), *f)).collect();
            if !years.is_empty() {
                let mut all = Figures::default();
                for (_, f) in &a.by_year {
                    all.collected.0 += f.collected.0;
                    all.due.0 += f.due.0;
                    all.overdue.0 += f.overdue.0;
                }
                charts.push(Chart {
                    id: "anni",
                    heading: "Per anno di scadenza".into(),
                    first_column: "Anno",
                    svg: columns_svg("anni", "Importi per anno di scadenza", &all, &years),
                    lines: a
                        .by_year
                        .iter()
                        .map(|(y, f)| {
                            let mut line = Line::of(y.to_string(), f);
                            line.href = Some(format!("/backoffice/?anno={y}"));
                            line
                        })
                        .collect(),
                });
            }
            for (id, heading, first, groups) in [
                ("servizi", "Per servizio", "Servizio", &a.by_service),
                ("uffici", "Per ufficio", "Ufficio", &a.by_office),
                (
                    "accertamenti",
                    "Per accertamento",
                    "Accertamento",
                    &a.by_accertamento,
                ),
            ] {
                charts.push(Chart {
                    id,
                    heading: format!("{heading}, {year}"),
                    first_column: first,
                    svg: bars_svg(
                        id,
                        &format!("Importi {}, {year}", heading.to_lowercase()),
                        groups,
                    ),
                    lines: groups
                        .iter()
                        .map(|g| Line::of(group_label(g), &g.figures))
                        .collect(),
                });
            }
        }
        let anomalies = &board.anomalies;
        let waiting = |list: &Vec<incasso_app::dashboard::AnomalyCount>| -> Vec<Waiting> {
            list.iter()
                .map(|a| Waiting {
                    label: a.label.clone(),
                    count: super::ui::italian_count(a.count.max(0) as u64),
                    amount: (a.amount.0 != 0).then(|| euro(a.amount)),
                    href: a.link.to_string(),
                })
                .collect()
        };
        let (supplies, supplies_total) = match &anomalies.supplies {
            Some((lines, total)) => (
                Some(
                    lines
                        .iter()
                        .map(|l| Waiting {
                            label: format!(
                                "Fornitura {} ({}): {}",
                                l.id,
                                l.record.file_name,
                                incasso_app::bus::status_label(&l.record.status).to_lowercase()
                            ),
                            count: super::ui::italian_count(l.errors.max(0) as u64),
                            amount: None,
                            href: format!("/backoffice/forniture/{}", l.id),
                        })
                        .collect(),
                ),
                super::ui::italian_count(*total),
            ),
            None => (None, String::new()),
        };
        HomePage {
            chrome,
            year,
            years: board.years.clone(),
            year_error,
            amounts: board.amounts.is_some(),
            total,
            charts,
            as_of: board
                .as_of
                .map(|t| {
                    incasso_core::time::to_rome(t)
                        .format("%d/%m/%Y %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default(),
            offices: board.offices.as_ref().map(|o| o.join(", ")),
            reconciliation: anomalies.reconciliation.as_ref().map(waiting),
            receipts: anomalies.receipts.as_ref().map(waiting),
            supplies,
            supplies_total,
            nothing_waits: anomalies.is_empty(),
        }
    }
}

fn group_label(g: &Group) -> String {
    if g.code.is_empty() || g.code == g.name {
        g.name.clone()
    } else {
        format!("{} ({})", g.name, g.code)
    }
}

/// `1234567` cents as `12.345,67 €`.
fn euro(c: Cents) -> String {
    format!("{} €", c.to_italian())
}

/// Text for SVG and HTML: `&`, `<`, `>` and quotes escaped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A round top for an axis: 1, 2 or 5 times a power of ten, at least `max`.
fn nice_top(max: i64) -> i64 {
    if max <= 0 {
        return 100;
    }
    let mut step = 1i64;
    while step.saturating_mul(10) <= max {
        step = step.saturating_mul(10);
    }
    for m in [1, 2, 5, 10] {
        if step.saturating_mul(m) >= max {
            return step.saturating_mul(m);
        }
    }
    step.saturating_mul(10)
}

/// An axis label: whole euro, with thousands as `k` and millions as `M`.
fn axis_label(cents: i64) -> String {
    let euro = cents / 100;
    if euro >= 1_000_000 {
        format!("{} M€", format_decimal(euro as f64 / 1_000_000.0))
    } else if euro >= 1_000 {
        format!("{} k€", format_decimal(euro as f64 / 1_000.0))
    } else {
        format!("{euro} €")
    }
}

fn format_decimal(v: f64) -> String {
    let s = if (v - v.round()).abs() < 0.05 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    };
    s.replace('.', ",")
}

/// The `<title>` and `<desc>` every chart opens with: its name, and the
/// totals it draws in words.
fn svg_open(id: &str, title: &str, total: &Figures, width: u32, height: u32) -> String {
    format!(
        r#"<svg class="bo-chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="grafico-{id}-titolo grafico-{id}-desc" xmlns="http://www.w3.org/2000/svg"><title id="grafico-{id}-titolo">{}</title><desc id="grafico-{id}-desc">{}</desc>"#,
        escape(title),
        escape(&format!(
            "Grafico a barre. Riscosso {}, da riscuotere {}, scaduto {}. Le cifre sono nella tabella che segue.",
            euro(total.collected),
            euro(total.due),
            euro(total.overdue)
        )),
    )
}

/// The legend: each colour named.
fn legend(x: u32, y: u32) -> String {
    let mut out = String::new();
    for (i, (class, label)) in [
        ("bo-bar-collected", "Riscosso"),
        ("bo-bar-due", "Da riscuotere"),
        ("bo-bar-overdue", "Scaduto"),
    ]
    .iter()
    .enumerate()
    {
        let x = x + i as u32 * 150;
        out.push_str(&format!(
            r#"<rect class="{class}" x="{x}" y="{y}" width="14" height="14"/><text class="bo-chart-text" x="{}" y="{}">{label}</text>"#,
            x + 20,
            y + 12
        ));
    }
    out
}

/// Columns in threes (collected, due, overdue) for each label, on an axis
/// with four gridlines.
fn columns_svg(id: &str, title: &str, total: &Figures, data: &[(String, Figures)]) -> String {
    let (width, height) = (760u32, 300u32);
    let (left, right, top, bottom) = (70u32, 10u32, 36u32, 30u32);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max = data.iter().map(|(_, f)| f.max()).max().unwrap_or(0);
    let top_value = nice_top(max);
    let mut svg = svg_open(id, title, total, width, height);
    svg.push_str(&legend(left, 4));
    for i in 0..=4u32 {
        let y = top + plot_h - plot_h * i / 4;
        let value = top_value / 4 * i64::from(i);
        svg.push_str(&format!(
            r#"<line class="bo-chart-grid" x1="{left}" y1="{y}" x2="{}" y2="{y}"/><text class="bo-chart-text bo-chart-axis" x="{}" y="{}">{}</text>"#,
            width - right,
            left - 6,
            y + 4,
            escape(&axis_label(value))
        ));
    }
    let n = data.len().max(1) as u32;
    let slot = plot_w / n;
    let bar = (slot.saturating_sub(6) / 3).clamp(2, 40);
    for (i, (label, f)) in data.iter().enumerate() {
        let x0 = left + slot * i as u32 + (slot - bar * 3) / 2;
        for (k, (class, value)) in [
            ("bo-bar-collected", f.collected.0),
            ("bo-bar-due", f.due.0),
            ("bo-bar-overdue", f.overdue.0),
        ]
        .iter()
        .enumerate()
        {
            let h = scale(*value, top_value, plot_h);
            if h > 0 {
                svg.push_str(&format!(
                    r#"<rect class="{class}" x="{}" y="{}" width="{bar}" height="{h}"/>"#,
                    x0 + bar * k as u32,
                    top + plot_h - h,
                ));
            }
        }
        svg.push_str(&format!(
            r#"<text class="bo-chart-text bo-chart-label" x="{}" y="{}">{}</text>"#,
            left + slot * i as u32 + slot / 2,
            height - 10,
            escape(label)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars, one per group (the largest [`GROUPS_DRAWN`]), each
/// split into collected, due and overdue.
fn bars_svg(id: &str, title: &str, groups: &[Group]) -> String {
    let drawn = &groups[..groups.len().min(GROUPS_DRAWN)];
    let mut total = Figures::default();
    for g in groups {
        total.collected.0 += g.figures.collected.0;
        total.due.0 += g.figures.due.0;
        total.overdue.0 += g.figures.overdue.0;
    }
    let (width, row) = (760u32, 30u32);
    let (left, right, top) = (230u32, 20u32, 30u32);
    let height = top + row * drawn.len().max(1) as u32 + 10;
    let plot_w = width - left - right;
    let max = drawn
        .iter()
        .map(|g| g.figures.collected.0 + g.figures.due.0 + g.figures.overdue.0)
        .max()
        .unwrap_or(0);
    let mut svg = svg_open(id, title, &total, width, height);
    svg.push_str(&legend(left, 4));
    if drawn.is_empty() {
        svg.push_str(&format!(
            r#"<text class="bo-chart-text" x="{left}" y="{}">Nessun importo</text>"#,
            top + 18
        ));
    }
    for (i, g) in drawn.iter().enumerate() {
        let y = top + row * i as u32;
        let mut label = group_label(g);
        if label.chars().count() > 32 {
            label = label.chars().take(31).collect::<String>() + "…";
        }
        svg.push_str(&format!(
            r#"<text class="bo-chart-text bo-chart-axis" x="{}" y="{}">{}</text>"#,
            left - 8,
            y + 17,
            escape(&label)
        ));
        let mut x = left;
        for (class, value) in [
            ("bo-bar-collected", g.figures.collected.0),
            ("bo-bar-due", g.figures.due.0),
            ("bo-bar-overdue", g.figures.overdue.0),
        ] {
            let w = scale(value, max, plot_w);
            if w > 0 {
                svg.push_str(&format!(
                    r#"<rect class="{class}" x="{x}" y="{}" width="{w}" height="20"/>"#,
                    y + 4
                ));
                x += w;
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// `value` of `max` as a length of `span` units (at least 1 for a value
/// that is not nothing).
fn scale(value: i64, max: i64, span: u32) -> u32 {
    if value <= 0 || max <= 0 {
        return 0;
    }
    let len = (i128::from(value) * i128::from(span) / i128::from(max)) as u32;
    len.clamp(1, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round_and_labels_italian() {
        assert_eq!(nice_top(0), 100);
        assert_eq!(nice_top(730), 1_000);
        assert_eq!(nice_top(150_000), 200_000);
        assert_eq!(nice_top(410_000_000), 500_000_000);
        assert_eq!(axis_label(250_000), "2,5 k€");
        assert_eq!(axis_label(300_000_000), "3 M€");
        assert_eq!(scale(1, 1_000_000, 600), 1);
        assert_eq!(scale(0, 10, 600), 0);
        assert_eq!(scale(10, 10, 600), 600);
    }

    #[test]
    fn charts_are_named_images_with_escaped_text() {
        let g = Group {
            code: "R&D".into(),
            name: "<Ricerca>".into(),
            figures: Figures {
                collected: Cents(12_345),
                due: Cents(0),
                overdue: Cents(5),
            },
        };
        let svg = bars_svg("x", "Per servizio", &[g]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains("<title id=\"grafico-x-titolo\">Per servizio</title>"));
        assert!(svg.contains("Riscosso 123,45 €"));
        assert!(svg.contains("&lt;Ricerca&gt; (R&amp;D)"));
        assert!(!svg.contains("style="));
    }
}
