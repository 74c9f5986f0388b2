//! The citizen's payment portal (`/portale/{fiscalCode}/`): the use cases
//! behind its pages, one module per area. The visitor is anonymous
//! (`Caller::Public`) unless signed in with SPID/CIE; an anonymous visitor
//! is shown what is owed, to whom and by when, never who owes it.

pub mod area;
pub mod cart;
pub mod citizen;
pub mod enti;
pub mod notice;
pub mod receipts;
pub mod spontaneous;
pub mod style;

use crate::Ctx;
use crate::error::{AppError, At, Place};

/// The procedures a rating may be about, as the rating form names them.
pub const RATED_PROCEDURES: &[&str] = &["avviso", "carrello", "servizio", "ricevuta", "area"];

/// A citizen's rating of a procedure they finished (Designers Italia
/// C.SE.1.7): 1 to 5 stars and an optional remark of at most 200
/// characters. Anonymous: nothing ties it to who left it.
pub async fn rate(
    ctx: &Ctx,
    ente: &str,
    procedure: &str,
    stars: &str,
    remark: &str,
) -> Result<(), AppError> {
    let at = Place::new("portal.rate", ente, procedure);
    if !RATED_PROCEDURES.contains(&procedure) {
        return Err(AppError::invalid(
            "UNKNOWN_PROCEDURE",
            "procedura: la valutazione non riguarda un servizio di questo portale",
        ));
    }
    let stars: i32 = match stars.trim().parse() {
        Ok(n @ 1..=5) => n,
        _ => {
            return Err(AppError::invalid(
                "RATING_STARS",
                "stelle: scegliere da 1 a 5 stelle",
            ));
        }
    };
    let remark = remark.trim();
    if remark.chars().count() > 200 {
        return Err(AppError::invalid(
            "RATING_REMARK",
            "commento: al massimo 200 caratteri",
        ));
    }
    ctx.store().get_ente(ente).await.at(at)?;
    ctx.store()
        .add_portal_rating(
            ente,
            procedure,
            stars,
            (!remark.is_empty()).then_some(remark),
            ctx.now(),
        )
        .await
        .at(at)
}
