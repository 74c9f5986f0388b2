//! The intermediary's page of its Enti, each with the address of its
//! portal: public, as every portal is.

use crate::Ctx;
use crate::error::{AppError, At, Place};

/// An Ente whose portal the intermediary offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntePortal {
    pub fiscal_code: String,
    pub name: String,
}

/// Every Ente the intermediary serves, by name.
pub async fn list(ctx: &Ctx) -> Result<Vec<EntePortal>, AppError> {
    let mut all: Vec<EntePortal> = ctx
        .store()
        .list_enti()
        .await
        .at(Place::new("portal.enti", "", ""))?
        .into_iter()
        .map(|e| EntePortal {
            fiscal_code: e.fiscal_code,
            name: e.name,
        })
        .collect();
    all.sort_by_cached_key(|e| (e.name.to_lowercase(), e.fiscal_code.clone()));
    Ok(all)
}
