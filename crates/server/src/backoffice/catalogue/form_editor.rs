//! The form of a spontaneous service, edited in the back office
//! (`/backoffice/servizi/{code}/modulo`): one block per field (name, kind,
//! label, help, required, pattern, choices, lengths), blocks added and
//! removed by buttons that post the whole editor back (no JavaScript), the
//! amount (fixed, a table of choices, or typed within bounds) and the
//! causale. Every error is shown next to its input and listed at the top;
//! nothing is saved until the whole definition is valid. Saving names the
//! version read, so two clerks never overwrite each other unseen.

use super::super::ui::{Chrome, page_with_status};
use super::super::{SignedIn, error_page, page};
use super::{SECTION, may_write, parse_amount};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use incasso_app::portal::spontaneous::{self as sp, ServiceForm};
use incasso_app::{AppError, Kind};
use incasso_core::Cents;
use incasso_core::form::{self, Amount, AmountChoice, Field, FieldKind, FormDef};
use std::collections::BTreeMap;

/// Empty amount-table rows offered after the filled ones.
const SPARE_TABLE_ROWS: usize = 1;

/// A field's block as the editor shows it (texts as typed).
#[derive(Default, Clone)]
struct FieldRow {
    index: usize,
    name: String,
    kind: String,
    label: String,
    help: String,
    required: bool,
    pattern: String,
    /// One choice a line.
    choices: String,
    min: String,
    max: String,
    /// Error per attribute (`name`, `label`...).
    errors: BTreeMap<String, String>,
}

impl FieldRow {
    fn err(&self, attr: &str) -> Option<&String> {
        self.errors.get(attr)
    }

    fn id(&self, attr: &str) -> String {
        format!("c{}-{attr}", self.index)
    }

    /// `aria-describedby` of an input: its help (when given) and error.
    fn described(&self, attr: &str, help: bool) -> String {
        let mut ids = Vec::new();
        if help {
            ids.push(format!("c{}-{attr}-aiuto", self.index));
        }
        if self.errors.contains_key(attr) {
            ids.push(format!("c{}-{attr}-errore", self.index));
        }
        ids.join(" ")
    }
}

#[derive(Default, Clone)]
struct TableRow {
    index: usize,
    label: String,
    amount: String,
    errors: BTreeMap<String, String>,
}

impl TableRow {
    fn err(&self, attr: &str) -> Option<&String> {
        self.errors.get(attr)
    }
}

/// An error at the top, linked to its input.
struct Problem {
    href: String,
    text: String,
}

#[derive(Template)]
#[template(path = "backoffice/services_form_fields.html")]
struct EditorPage {
    chrome: Chrome,
    code: String,
    service_name: String,
    can_write: bool,
    version: String,
    rows: Vec<FieldRow>,
    kinds: Vec<(&'static str, &'static str)>,
    mode: String,
    fixed: String,
    table: Vec<TableRow>,
    min: String,
    max: String,
    causale: String,
    /// Errors of the amount and causale: `amount.fixed`, `amount.min`,
    /// `amount.max`, `amount.table`, `causale`, `fields`.
    errors: BTreeMap<String, String>,
    problems: Vec<Problem>,
    /// A refusal that is no input's (a save in between).
    alert: Option<String>,
    saved: bool,
}

impl EditorPage {
    fn err(&self, key: &str) -> Option<&String> {
        self.errors.get(key)
    }
}

fn euros(c: Cents) -> String {
    c.to_italian()
}

fn rows_of(def: &FormDef) -> Vec<FieldRow> {
    def.fields
        .iter()
        .enumerate()
        .map(|(i, f)| FieldRow {
            index: i,
            name: f.name.clone(),
            kind: f.kind.as_str().into(),
            label: f.label.clone(),
            help: f.help.clone(),
            required: f.required,
            pattern: f.pattern.clone().unwrap_or_default(),
            choices: f.choices.join("\n"),
            min: f.min_length.map(|n| n.to_string()).unwrap_or_default(),
            max: f.max_length.map(|n| n.to_string()).unwrap_or_default(),
            errors: BTreeMap::new(),
        })
        .collect()
}

/// The editor drawn from what was typed.
struct Draft {
    rows: Vec<FieldRow>,
    mode: String,
    fixed: String,
    table: Vec<TableRow>,
    min: String,
    max: String,
    causale: String,
    version: String,
}

impl Draft {
    fn of(f: &ServiceForm) -> Draft {
        let (mode, fixed, table, min, max) = match &f.def.amount {
            Amount::Fixed(c) => ("fixed", euros(*c), Vec::new(), String::new(), String::new()),
            Amount::Table(rows) => (
                "table",
                String::new(),
                rows.iter()
                    .enumerate()
                    .map(|(i, r)| TableRow {
                        index: i,
                        label: r.label.clone(),
                        amount: euros(r.cents),
                        errors: BTreeMap::new(),
                    })
                    .collect(),
                String::new(),
                String::new(),
            ),
            Amount::Range { min, max } => {
                ("range", String::new(), Vec::new(), euros(*min), euros(*max))
            }
        };
        Draft {
            rows: rows_of(&f.def),
            mode: mode.into(),
            fixed,
            table,
            min,
            max,
            causale: f.def.causale.clone(),
            version: f.version.map(|v| v.to_string()).unwrap_or_default(),
        }
    }

    /// What was posted: field blocks `c{i}_*`, table rows `t{j}_*`; a
    /// block or row ticked for removal, or left wholly empty, is dropped.
    fn posted(pairs: Vec<(String, String)>) -> (Draft, String, String) {
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in pairs.into_iter().take(2000) {
            m.entry(k).or_insert(v);
        }
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        let mut rows = Vec::new();
        for i in 0..form::MAX_FIELDS + 5 {
            let p = |a: &str| get(&format!("c{i}_{a}"));
            if !m.contains_key(&format!("c{i}_name")) || !p("remove").is_empty() {
                continue;
            }
            let row = FieldRow {
                index: rows.len(),
                name: p("name").trim().to_string(),
                kind: p("kind"),
                label: p("label").trim().to_string(),
                help: p("help").trim().to_string(),
                required: !p("required").is_empty(),
                pattern: p("pattern").trim().to_string(),
                choices: p("choices").replace('\r', ""),
                min: p("min").trim().to_string(),
                max: p("max").trim().to_string(),
                errors: BTreeMap::new(),
            };
            let blank = row.name.is_empty()
                && row.label.is_empty()
                && row.help.is_empty()
                && row.pattern.is_empty()
                && row.choices.trim().is_empty();
            if !blank {
                rows.push(row);
            }
        }
        let mut table = Vec::new();
        for j in 0..form::MAX_CHOICES + 5 {
            let p = |a: &str| get(&format!("t{j}_{a}"));
            if !m.contains_key(&format!("t{j}_label")) || !p("remove").is_empty() {
                continue;
            }
            let (label, amount) = (
                p("label").trim().to_string(),
                p("amount").trim().to_string(),
            );
            if label.is_empty() && amount.is_empty() {
                continue;
            }
            table.push(TableRow {
                index: table.len(),
                label,
                amount,
                errors: BTreeMap::new(),
            });
        }
        (
            Draft {
                rows,
                mode: get("amount_mode"),
                fixed: get("amount_fixed").trim().to_string(),
                table,
                min: get("amount_min").trim().to_string(),
                max: get("amount_max").trim().to_string(),
                causale: get("causale").trim().to_string(),
                version: get("version"),
            },
            get("csrf"),
            get("azione"),
        )
    }

    /// The definition typed, or the errors of what could not even be
    /// read (an amount that is not one, a length that is not a number),
    /// under the paths core's validation uses.
    fn definition(&self) -> Result<FormDef, BTreeMap<String, String>> {
        let mut errors = BTreeMap::new();
        let amount_of = |s: &str, path: String, errors: &mut BTreeMap<String, String>| {
            parse_amount(s).unwrap_or_else(|| {
                errors.insert(
                    path,
                    "importo non valido: scrivere euro e centesimi, per esempio 16,00".into(),
                );
                Cents(0)
            })
        };
        let mut fields = Vec::new();
        for r in &self.rows {
            let i = r.index;
            let kind = FieldKind::parse(&r.kind).unwrap_or_else(|| {
                errors.insert(format!("fields[{i}].kind"), "scegliere un tipo".into());
                FieldKind::Text
            });
            let mut length = |s: &str, attr: &str| -> Option<u32> {
                if s.is_empty() {
                    return None;
                }
                s.parse::<u32>().ok().or_else(|| {
                    errors.insert(
                        format!("fields[{i}].{attr}"),
                        "scrivere un numero intero di caratteri".into(),
                    );
                    None
                })
            };
            let min_length = length(&r.min, "min_length");
            let max_length = length(&r.max, "max_length");
            fields.push(Field {
                name: r.name.clone(),
                kind,
                label: r.label.clone(),
                help: r.help.clone(),
                required: r.required,
                pattern: Some(r.pattern.clone()).filter(|p| !p.is_empty()),
                choices: r
                    .choices
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect(),
                min_length,
                max_length,
            });
        }
        let amount = match self.mode.as_str() {
            "fixed" => Amount::Fixed(amount_of(&self.fixed, "amount.fixed".into(), &mut errors)),
            "table" => Amount::Table(
                self.table
                    .iter()
                    .map(|t| AmountChoice {
                        label: t.label.clone(),
                        cents: amount_of(
                            &t.amount,
                            format!("amount.table[{}].cents", t.index),
                            &mut errors,
                        ),
                    })
                    .collect(),
            ),
            "range" => Amount::Range {
                min: amount_of(&self.min, "amount.min".into(), &mut errors),
                max: amount_of(&self.max, "amount.max".into(), &mut errors),
            },
            _ => {
                errors.insert(
                    "amount.mode".into(),
                    "scegliere come si stabilisce l'importo".into(),
                );
                Amount::Fixed(Cents(0))
            }
        };
        let def = FormDef {
            fields,
            amount,
            causale: self.causale.clone(),
        };
        if let Err(invalid) = def.validate() {
            for e in invalid.0 {
                errors.entry(e.field).or_insert(e.message);
            }
        }
        if errors.is_empty() {
            Ok(def)
        } else {
            Err(errors)
        }
    }
}

/// Where an error's path is on the page, and how the top list names it.
fn place(path: &str, rows: &[FieldRow]) -> (String, String) {
    let attr_label = |a: &str| match a {
        "name" => "nome",
        "kind" => "tipo",
        "label" => "etichetta",
        "help" => "aiuto",
        "pattern" => "espressione regolare",
        "choices" => "opzioni",
        "min_length" => "lunghezza minima",
        "max_length" => "lunghezza massima",
        _ => "campo",
    };
    if let Some(rest) = path.strip_prefix("fields[")
        && let Some((i, attr)) = rest.split_once("].")
        && let Ok(i) = i.parse::<usize>()
    {
        let shown = rows
            .get(i)
            .map(|r| {
                if r.label.is_empty() {
                    r.name.clone()
                } else {
                    r.label.clone()
                }
            })
            .unwrap_or_default();
        let attr = if attr == "min_length" {
            "min"
        } else if attr == "max_length" {
            "max"
        } else {
            attr
        };
        return (
            format!("#c{i}-{attr}"),
            format!(
                "Campo {} ({shown}), {}",
                i + 1,
                attr_label(match attr {
                    "min" => "min_length",
                    "max" => "max_length",
                    a => a,
                })
            ),
        );
    }
    if let Some(rest) = path.strip_prefix("amount.table[")
        && let Some((j, attr)) = rest.split_once("].")
    {
        let a = if attr == "cents" { "amount" } else { "label" };
        let n = j.parse::<usize>().map(|j| j + 1).unwrap_or(0);
        return (format!("#t{j}-{a}"), format!("Importi, riga {n}"));
    }
    match path {
        "amount.fixed" => ("#importo-fisso".into(), "Importo fisso".into()),
        "amount.min" => ("#importo-min".into(), "Importo minimo".into()),
        "amount.max" => ("#importo-max".into(), "Importo massimo".into()),
        "amount.table" => ("#t0-label".into(), "Tabella degli importi".into()),
        "amount.mode" => ("#modo-fixed".into(), "Importo".into()),
        "causale" => ("#causale".into(), "Causale".into()),
        _ => ("#campi".into(), "Campi".into()),
    }
}

async fn render(
    state: &AppState,
    signed: &SignedIn,
    f: &ServiceForm,
    mut d: Draft,
    errors: BTreeMap<String, String>,
    alert: Option<String>,
    saved: bool,
) -> EditorPage {
    let can_write = signed.ente.as_deref().is_some_and(|e| may_write(signed, e));
    let mut problems = Vec::new();
    let mut own = BTreeMap::new();
    // The top list in the page's order: fields, amount, causale.
    let rank = |path: &str| -> (u8, usize) {
        let index = |rest: &str| {
            rest.split(']')
                .next()
                .and_then(|i| i.parse::<usize>().ok())
                .unwrap_or(0)
        };
        if let Some(rest) = path.strip_prefix("fields[") {
            (0, index(rest))
        } else if path == "fields" {
            (0, 0)
        } else if let Some(rest) = path.strip_prefix("amount.table[") {
            (1, index(rest) + 1)
        } else if path.starts_with("amount") {
            (1, 0)
        } else {
            (2, 0)
        }
    };
    let mut ordered: Vec<(&String, &String)> = errors.iter().collect();
    ordered.sort_by_key(|(path, _)| rank(path));
    for (path, message) in ordered {
        let (href, label) = place(path, &d.rows);
        problems.push(Problem {
            href,
            text: format!("{label}: {message}"),
        });
        if let Some(rest) = path.strip_prefix("fields[")
            && let Some((i, attr)) = rest.split_once("].")
            && let Some(r) = i.parse::<usize>().ok().and_then(|i| d.rows.get_mut(i))
        {
            let attr = match attr {
                "min_length" => "min",
                "max_length" => "max",
                a => a,
            };
            r.errors.insert(attr.to_string(), message.clone());
        } else if let Some(rest) = path.strip_prefix("amount.table[")
            && let Some((j, attr)) = rest.split_once("].")
            && let Some(t) = j.parse::<usize>().ok().and_then(|j| d.table.get_mut(j))
        {
            let a = if attr == "cents" { "amount" } else { "label" };
            t.errors.insert(a.to_string(), message.clone());
        } else {
            own.insert(path.clone(), message.clone());
        }
    }
    // Room for a new amount row.
    for _ in 0..SPARE_TABLE_ROWS {
        let index = d.table.len();
        if index < form::MAX_CHOICES {
            d.table.push(TableRow {
                index,
                ..TableRow::default()
            });
        }
    }
    EditorPage {
        chrome: signed.chrome(state, SECTION).await,
        code: f.service.code.clone(),
        service_name: f.service.name.clone(),
        can_write,
        version: d.version,
        rows: d.rows,
        kinds: FieldKind::ALL
            .iter()
            .map(|k| (k.as_str(), k.label()))
            .collect(),
        mode: d.mode,
        fixed: d.fixed,
        table: d.table,
        min: d.min,
        max: d.max,
        causale: d.causale,
        errors: own,
        problems,
        alert,
        saved,
    }
}

#[derive(serde::Deserialize, Default)]
pub(super) struct EditorQuery {
    #[serde(default)]
    esito: String,
}

/// `GET /backoffice/servizi/{code}/modulo`
pub(super) async fn show(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(code): Path<String>,
    axum::extract::Query(q): axum::extract::Query<EditorQuery>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    match sp::form_for_editing(&ctx, &ente, &code).await {
        Ok(f) if !f.service.spontaneous => error_page(
            signed.chrome(&state, SECTION).await,
            &AppError::new(
                Kind::NotFound,
                "NOT_SPONTANEOUS",
                "il servizio non è a pagamento spontaneo: il modulo si definisce solo per quelli",
            ),
        ),
        Ok(f) => {
            let d = Draft::of(&f);
            page(
                &render(
                    &state,
                    &signed,
                    &f,
                    d,
                    BTreeMap::new(),
                    None,
                    q.esito == "salvato",
                )
                .await,
            )
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

/// `POST /backoffice/servizi/{code}/modulo`: `azione` = `salva`, or
/// `campo` (one more field block) / `riga` (one more amount row), which
/// only draw the editor again with what was typed.
pub(super) async fn save(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(code): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let (mut d, csrf, action) = Draft::posted(pairs);
    if let Err(r) = signed.check_csrf(&csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let ctx = signed.ctx(&state);
    let f = match sp::form_for_editing(&ctx, &ente, &code).await {
        Ok(f) => f,
        Err(e) => return error_page(signed.chrome(&state, SECTION).await, &e),
    };
    if !may_write(&signed, &ente) {
        return error_page(signed.chrome(&state, SECTION).await, &AppError::forbidden());
    }
    if action == "campo" {
        if d.rows.len() < form::MAX_FIELDS {
            let index = d.rows.len();
            d.rows.push(FieldRow {
                index,
                kind: "text".into(),
                required: true,
                ..FieldRow::default()
            });
        }
        return page(&render(&state, &signed, &f, d, BTreeMap::new(), None, false).await);
    }
    if action == "riga" {
        return page(&render(&state, &signed, &f, d, BTreeMap::new(), None, false).await);
    }
    let def = match d.definition() {
        Ok(def) => def,
        Err(errors) => {
            let p = render(&state, &signed, &f, d, errors, None, false).await;
            return page_with_status(&p, StatusCode::BAD_REQUEST);
        }
    };
    let expected = d.version.trim().parse::<i64>().ok();
    match sp::save_form(&ctx, &ente, &code, &def, expected).await {
        Ok(_) => Redirect::to(&format!("{SECTION}/{code}/modulo?esito=salvato")).into_response(),
        Err(e) if e.kind == Kind::Invalid => {
            let errors = e
                .errors
                .iter()
                .map(|f| (f.field.clone(), f.message.clone()))
                .collect();
            let p = render(&state, &signed, &f, d, errors, None, false).await;
            page_with_status(&p, StatusCode::BAD_REQUEST)
        }
        Err(e) if e.kind == Kind::Conflict => {
            let p = render(
                &state,
                &signed,
                &f,
                d,
                BTreeMap::new(),
                Some(e.detail),
                false,
            )
            .await;
            page_with_status(&p, StatusCode::CONFLICT)
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}
