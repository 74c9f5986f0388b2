//! What every page of the back office shares: its frame (who is signed in,
//! the Ente, the sections their rights open), lists that page, sort and
//! export on the server, and Italian forms of amounts and dates.
//!
//! A list is an application [`Sheet`]: the page shows it through
//! `backoffice/_table.html`, and the same value is the CSV or XLSX export,
//! so the file a clerk downloads is the list they were looking at.

use super::{SignedIn, page};
use crate::AppState;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use incasso_app::sheet::{Cell, Sheet};
use incasso_core::access::{Access, Area, Role};
use serde::Deserialize;

/// A section of the back office: its path, its name, and the area whose
/// read right opens it (none: every operator of an Ente; `Users` for the
/// administrators' configuration pages).
pub struct Section {
    pub path: &'static str,
    pub label: &'static str,
    pub area: Option<Area>,
    /// Only the Ente's and the intermediary's administrators.
    pub admin_only: bool,
}

/// The sections, in the order of the navigation.
pub const NAV: &[Section] = &[
    Section {
        path: "/backoffice/",
        label: "Cruscotto",
        area: None,
        admin_only: false,
    },
    Section {
        path: "/backoffice/posizioni",
        label: "Posizioni",
        area: Some(Area::Positions),
        admin_only: false,
    },
    Section {
        path: "/backoffice/sportello",
        label: "Sportello digitale",
        area: Some(Area::Positions),
        admin_only: false,
    },
    Section {
        path: "/backoffice/forniture",
        label: "Forniture",
        area: Some(Area::Supplies),
        admin_only: false,
    },
    Section {
        path: "/backoffice/ricevute",
        label: "Ricevute",
        area: Some(Area::Reporting),
        admin_only: false,
    },
    Section {
        path: "/backoffice/flussi",
        label: "Rendicontazioni",
        area: Some(Area::Reporting),
        admin_only: false,
    },
    Section {
        path: "/backoffice/tesoreria",
        label: "Tesoreria e riconciliazione",
        area: Some(Area::Reporting),
        admin_only: false,
    },
    Section {
        path: "/backoffice/accertamenti",
        label: "Accertamenti",
        area: Some(Area::Accertamenti),
        admin_only: false,
    },
    Section {
        path: "/backoffice/servizi",
        label: "Catalogo dei servizi",
        area: Some(Area::Catalogue),
        admin_only: false,
    },
    Section {
        path: "/backoffice/notifiche",
        label: "Messaggi ai cittadini",
        area: Some(Area::Positions),
        admin_only: false,
    },
    Section {
        path: "/backoffice/tracciati",
        label: "Tracciati",
        area: Some(Area::Supplies),
        admin_only: false,
    },
    Section {
        path: "/backoffice/portale",
        label: "Portale dei pagamenti",
        area: None,
        admin_only: true,
    },
    Section {
        path: "/backoffice/stazioni",
        label: "Stazioni",
        area: None,
        admin_only: true,
    },
    Section {
        path: "/backoffice/terminali",
        label: "Terminali POS",
        area: Some(Area::Positions),
        admin_only: true,
    },
    Section {
        path: "/backoffice/webhook",
        label: "Webhook",
        area: None,
        admin_only: true,
    },
    Section {
        path: "/backoffice/utenti",
        label: "Utenti e ruoli",
        area: Some(Area::Users),
        admin_only: false,
    },
    Section {
        path: "/backoffice/chiavi",
        label: "Chiavi API",
        area: Some(Area::Users),
        admin_only: true,
    },
    Section {
        path: "/backoffice/giornale",
        label: "Giornale degli eventi",
        // The log names people and what they did: read with the users.
        area: Some(Area::Users),
        admin_only: false,
    },
];

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The frame of a signed-in page.
pub struct Chrome {
    pub csrf: String,
    pub full_name: String,
    pub role: &'static str,
    /// The Ente the page is about, and its name.
    pub ente: Option<String>,
    pub ente_name: String,
    /// For the intermediary's administrator: every Ente, to switch to.
    pub enti: Vec<(String, String)>,
    pub nav: Vec<NavItem>,
    /// The path to come back to after switching Ente.
    pub here: String,
}

impl Chrome {
    pub async fn new(state: &AppState, signed: &SignedIn, section: &str) -> Chrome {
        let rights = &signed.operator.rights;
        let admin = matches!(rights.role, Role::IntermediaryAdmin | Role::EnteAdmin);
        let ente = signed.ente.clone();
        let nav = NAV
            .iter()
            .filter(|s| !s.admin_only || admin)
            .filter(|s| match (s.area, &ente) {
                (None, _) => true,
                (Some(area), Some(e)) => rights.may(e, area, Access::Read),
                (Some(_), None) => false,
            })
            .map(|s| NavItem {
                href: s.path,
                label: s.label,
                current: s.path == section,
            })
            .collect();
        let ctx = signed.ctx(state);
        let mut enti = Vec::new();
        let mut ente_name = String::new();
        if rights.role == Role::IntermediaryAdmin {
            if let Ok(page) = incasso_app::admin::list_enti(&ctx, None, Some(1000)).await {
                enti = page
                    .items
                    .into_iter()
                    .map(|e| (e.fiscal_code, e.name))
                    .collect();
            }
            if let Some(e) = &ente {
                ente_name = enti
                    .iter()
                    .find(|(fc, _)| fc == e)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default();
            }
        } else if let Some(e) = &ente {
            ente_name = state
                .app
                .store
                .get_ente(e)
                .await
                .map(|e| e.name)
                .unwrap_or_default();
        }
        Chrome {
            csrf: signed.csrf.clone(),
            full_name: signed.operator.full_name.clone(),
            role: rights.role.label(),
            ente,
            ente_name,
            enti,
            nav,
            here: section.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/error.html")]
pub struct ErrorPage<'a> {
    pub chrome: Option<Chrome>,
    pub status: u16,
    pub message: &'a str,
}

/// `value` escaped for a URL's query.
pub fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `path` with the non-empty `pairs` as its query.
pub fn url(path: &str, pairs: &[(&str, &str)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", query_value(v)))
        .collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// The list parameters every list page takes besides its filters: sort
/// column and direction, page (from 1) and export format.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    pub ordina: String,
    #[serde(default)]
    pub verso: String,
    #[serde(default)]
    pub pagina: String,
    #[serde(default)]
    pub formato: String,
}

/// The export a list was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    Csv,
    Xlsx,
}

impl ListParams {
    /// The page asked for, from 1.
    pub fn page(&self) -> u32 {
        self.pagina.parse().ok().filter(|p| *p >= 1).unwrap_or(1)
    }

    /// Descending order asked for.
    pub fn descending(&self) -> bool {
        self.verso == "desc"
    }

    /// The sort column, when it is one of `allowed`; else `default`.
    pub fn sort<'a>(&'a self, allowed: &[&'a str], default: &'a str) -> &'a str {
        allowed
            .iter()
            .find(|a| **a == self.ordina)
            .copied()
            .unwrap_or(default)
    }

    pub fn export(&self) -> Option<Export> {
        match self.formato.as_str() {
            "csv" => Some(Export::Csv),
            "xlsx" => Some(Export::Xlsx),
            _ => None,
        }
    }
}

/// A column of a list page: its sort key, when the list sorts by it.
pub struct Column {
    pub label: String,
    pub sort_url: Option<String>,
    /// `ascending`/`descending` when the list is sorted by it (for
    /// `aria-sort`), else empty.
    pub sorted: &'static str,
    pub numeric: bool,
}

pub struct Row {
    pub cells: Vec<TableCell>,
}

pub struct TableCell {
    pub text: String,
    pub href: Option<String>,
    pub numeric: bool,
}

/// A list page's table: columns with their sort links, rows, the pages
/// around this one and the export links, all as URLs that keep the
/// filters.
pub struct Table {
    pub caption: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    pub page: u32,
    pub prev_url: Option<String>,
    pub next_url: Option<String>,
    pub csv_url: String,
    pub xlsx_url: String,
    /// "12.345 risultati", or empty when the count is not known.
    pub total: String,
}

/// How to build a list page's URLs: its path, its filters as they came,
/// and its sort.
pub struct ListUrls<'a> {
    pub path: &'a str,
    pub filters: Vec<(&'a str, String)>,
    pub sort: &'a str,
    pub descending: bool,
}

impl ListUrls<'_> {
    fn with(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> =
            self.filters.iter().map(|(k, v)| (*k, v.as_str())).collect();
        pairs.extend_from_slice(extra);
        url(self.path, &pairs)
    }

    fn sorted(&self) -> (&str, &str) {
        ("verso", if self.descending { "desc" } else { "asc" })
    }
}

impl Table {
    /// The table of `sheet`, whose columns sort by `sort_keys` (same order
    /// as the sheet's columns; empty: not sortable), linking each row's
    /// first cell to `links[i]` when given. `has_next`: a page follows.
    pub fn new(
        sheet: &Sheet,
        sort_keys: &[&str],
        links: &[Option<String>],
        urls: &ListUrls<'_>,
        page: u32,
        has_next: bool,
    ) -> Table {
        let columns = sheet
            .columns
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let key = sort_keys.get(i).copied().unwrap_or("");
                let current = !key.is_empty() && key == urls.sort;
                let sort_url = (!key.is_empty()).then(|| {
                    let desc = if current && !urls.descending {
                        "desc"
                    } else {
                        "asc"
                    };
                    urls.with(&[("ordina", key), ("verso", desc)])
                });
                let numeric = sheet
                    .rows
                    .first()
                    .and_then(|r| r.get(i))
                    .is_some_and(Cell::numeric);
                Column {
                    label: label.clone(),
                    sort_url,
                    sorted: match (current, urls.descending) {
                        (false, _) => "",
                        (true, false) => "ascending",
                        (true, true) => "descending",
                    },
                    numeric,
                }
            })
            .collect();
        let rows = sheet
            .rows
            .iter()
            .enumerate()
            .map(|(r, row)| Row {
                cells: row
                    .iter()
                    .enumerate()
                    .map(|(c, cell)| TableCell {
                        text: cell.display(),
                        href: if c == 0 {
                            links.get(r).cloned().flatten()
                        } else {
                            None
                        },
                        numeric: cell.numeric(),
                    })
                    .collect(),
            })
            .collect();
        let (verso_k, verso_v) = urls.sorted();
        let sort = [("ordina", urls.sort), (verso_k, verso_v)];
        let page_url = |p: u32| {
            let p = p.to_string();
            let mut extra = sort.to_vec();
            extra.push(("pagina", &p));
            urls.with(&extra)
        };
        let export_url = |f: &str| {
            let mut extra = sort.to_vec();
            extra.push(("formato", f));
            urls.with(&extra)
        };
        Table {
            caption: sheet.title.clone(),
            columns,
            rows,
            page,
            prev_url: (page > 1).then(|| page_url(page - 1)),
            next_url: has_next.then(|| page_url(page + 1)),
            csv_url: export_url("csv"),
            xlsx_url: export_url("xlsx"),
            total: String::new(),
        }
    }

    pub fn with_total(mut self, total: u64) -> Table {
        self.total = format!(
            "{} {}",
            italian_count(total),
            if total == 1 { "risultato" } else { "risultati" }
        );
        self
    }
}

/// `12345` as `12.345`.
pub fn italian_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(ch);
    }
    out
}

/// A list as the file asked for, named `name` (without extension).
pub fn export(sheet: &Sheet, format: Export, name: &str) -> Response {
    let (bytes, mime, ext) = match format {
        Export::Csv => (sheet.to_csv(), "text/csv; charset=utf-8", "csv"),
        Export::Xlsx => match sheet.to_xlsx() {
            Ok(b) => (
                b,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "xlsx",
            ),
            Err(e) => {
                tracing::error!(error = %e, "xlsx export failed");
                return super::simple_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Il file XLSX non si è potuto preparare: riprovare o scaricare il CSV.",
                );
            }
        },
    };
    download(bytes, mime, &format!("{name}.{ext}"))
}

/// Bytes to save as `file_name`.
pub fn download(bytes: Vec<u8>, mime: &str, file_name: &str) -> Response {
    let safe: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// A page rendered with a status other than 200 (a form sent back with its
/// errors: 400; a refusal: 403).
pub fn page_with_status(t: &impl Template, status: StatusCode) -> Response {
    let mut resp = page(t);
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_filters_and_escape_them() {
        assert_eq!(
            url(
                "/backoffice/posizioni",
                &[("q", "Rossi & C."), ("stato", "")]
            ),
            "/backoffice/posizioni?q=Rossi%20%26%20C."
        );
        assert_eq!(italian_count(1_234_567), "1.234.567");
        assert_eq!(italian_count(12), "12");
    }

    #[test]
    fn a_table_links_sorting_paging_and_exports() {
        let mut sheet = Sheet::new("Posizioni", &["IUPD", "Importo"]);
        sheet.push(vec![
            Cell::text("A1"),
            Cell::Money(incasso_core::money::Cents(100)),
        ]);
        let urls = ListUrls {
            path: "/backoffice/posizioni",
            filters: vec![("q", "rossi".into())],
            sort: "amount",
            descending: false,
        };
        let t = Table::new(
            &sheet,
            &["iupd", "amount"],
            &[Some("/backoffice/posizioni/A1".into())],
            &urls,
            2,
            true,
        );
        assert_eq!(
            t.columns[1].sort_url.as_deref(),
            Some("/backoffice/posizioni?q=rossi&ordina=amount&verso=desc")
        );
        assert_eq!(t.columns[1].sorted, "ascending");
        assert!(t.columns[1].numeric);
        assert_eq!(
            t.prev_url.as_deref(),
            Some("/backoffice/posizioni?q=rossi&ordina=amount&verso=asc&pagina=1")
        );
        assert_eq!(
            t.next_url.as_deref(),
            Some("/backoffice/posizioni?q=rossi&ordina=amount&verso=asc&pagina=3")
        );
        assert_eq!(
            t.xlsx_url,
            "/backoffice/posizioni?q=rossi&ordina=amount&verso=asc&formato=xlsx"
        );
        assert_eq!(t.rows[0].cells[1].text, "1,00");
        assert_eq!(
            t.rows[0].cells[0].href.as_deref(),
            Some("/backoffice/posizioni/A1")
        );
    }
}
