//! Ente A's catalogue for the back office's tests: offices UT and UR,
//! TARI of office UT on accertamento 2026/ACC-TARI and MENSA of office UR
//! on 2026/ACC-MENSA. Include after `common/app.rs` (as `app`) with
//! `#[path = "common/catalogue.rs"] mod catalogue;`.

use super::app::gpd::ENTE;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::catalogue::Service;
use incasso_core::ente::Office;
use incasso_store::Store;

pub const TARI_TAXONOMY: &str = "9/0101101IM/";
pub const MENSA_TAXONOMY: &str = "9/0201102IM/";

/// Puts the catalogue into Ente A.
pub async fn catalogue(store: &Store) {
    for (code, name) in [("UT", "Ufficio tributi"), ("UR", "Ufficio refezione")] {
        store
            .put_office(
                ENTE,
                &Office {
                    code: code.into(),
                    name: name.into(),
                    email: None,
                },
            )
            .await
            .unwrap();
    }
    for (code, description) in [("ACC-TARI", "Tassa rifiuti"), ("ACC-MENSA", "Refezione")] {
        store
            .put_accertamento(
                ENTE,
                &Accertamento {
                    year: 2026,
                    code: code.into(),
                    description: description.into(),
                    chapter: "1010".into(),
                    article: None,
                    siope_code: None,
                    active: true,
                },
            )
            .await
            .unwrap();
    }
    for (code, name, office, taxonomy, acc) in [
        ("TARI", "Tassa rifiuti", "UT", TARI_TAXONOMY, "ACC-TARI"),
        (
            "MENSA",
            "Mensa scolastica",
            "UR",
            MENSA_TAXONOMY,
            "ACC-MENSA",
        ),
    ] {
        store
            .put_service(
                ENTE,
                &Service {
                    code: code.into(),
                    name: name.into(),
                    office_code: Some(office.into()),
                    taxonomy_code: taxonomy.into(),
                    default_accertamento: Some(AccertamentoRef {
                        year: 2026,
                        code: acc.into(),
                    }),
                    iban: None,
                    fixed_amount: None,
                    spontaneous: false,
                    pagopa_service_id: None,
                    active: true,
                },
            )
            .await
            .unwrap();
    }
}
