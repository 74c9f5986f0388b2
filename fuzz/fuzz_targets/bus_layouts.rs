//! A supply or treasury file read with each built-in layout, the way a
//! load reads it: records, rows, positions grouped by key, built and
//! checked. The first byte picks the layout (modulo the number of layouts
//! that read files, in builtin order: export-only ones are never read);
//! the rest is the file.
#![no_main]

use chrono::TimeZone;
use incasso_bus::layout::{Format, LayoutKind};
use incasso_bus::normalize::{self, Context, Grouper, Row};
use incasso_bus::{Layout, builtin, read, treasury};
use incasso_core::catalogue::Service;
use incasso_core::ente::Ente;
use incasso_core::position::PositionRules;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::LazyLock;

static LAYOUTS: LazyLock<Vec<Layout>> = LazyLock::new(|| {
    builtin::names()
        .map(|name| builtin::get(name).unwrap().unwrap())
        .filter(|layout| layout.loads() || layout.kind == LayoutKind::Treasury)
        .collect()
});

const ENTE_FISCAL_CODE: &str = "80000130585";

static ENTE: LazyLock<Ente> = LazyLock::new(|| Ente {
    fiscal_code: ENTE_FISCAL_CODE.into(),
    name: "Comune di Prova".into(),
    ipa_code: Some("c_prova".into()),
    iban: Some("IT60X0542811101000000123456".into()),
    postal_iban: None,
    cbill_code: None,
    email: None,
});

static SERVICES: LazyLock<HashMap<String, Service>> = LazyLock::new(|| {
    ["TARI", "MENSA", "CDS"]
        .into_iter()
        .map(|code| {
            let service = Service {
                code: code.into(),
                name: code.into(),
                office_code: None,
                taxonomy_code: "9/0101100IM/".into(),
                default_accertamento: None,
                iban: None,
                fixed_amount: None,
                spontaneous: false,
                pagopa_service_id: None,
                active: true,
            };
            (code.to_string(), service)
        })
        .collect()
});

fn check(rows: &[Row]) {
    let ctx = Context {
        ente: &ENTE,
        services: &SERVICES,
        default_service: Some("TARI"),
    };
    let refs: Vec<&Row> = rows.iter().collect();
    if let Ok(built) = normalize::build(&refs, &ctx) {
        let rules = PositionRules {
            ente_fiscal_code: ENTE_FISCAL_CODE,
            now: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            segregation_codes: &[0, 1, 47],
        };
        if let Err(invalid) = built.position.validate(&rules) {
            let _ = normalize::locate(&built, &invalid.0);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((pick, file)) = data.split_first() else {
        return;
    };
    let layout = &LAYOUTS[usize::from(*pick) % LAYOUTS.len()];
    let file = Cursor::new(file.to_vec());
    if layout.kind == LayoutKind::Treasury {
        let _ = treasury::movements(layout, ENTE_FISCAL_CODE, file);
        return;
    }
    let Ok(records) = read::records(layout, file) else {
        return;
    };
    let mut grouper = match layout.format {
        Format::Json { .. } => Grouper::one_record_per_position(),
        _ => Grouper::new(),
    };
    let mut group: Vec<Row> = Vec::new();
    for record in records.flatten() {
        let Ok(row) = normalize::row(layout, &record) else {
            continue;
        };
        if let Ok(previous) = grouper.push(row.clone()) {
            if previous.is_some() && !group.is_empty() {
                check(&std::mem::take(&mut group));
            }
            group.push(row);
        }
    }
    if grouper.finish().is_some() && !group.is_empty() {
        check(&group);
    }
});
