//! The portal's cart: up to [`MAX_NOTICES`] notices, of one or several
//! Enti of the intermediary, paid together in ONE pagoPA Checkout cart
//! (`POST /checkout/ec/v1/carts` through the station of the first notice).
//!
//! The cart lives in the store under a random 128-bit id that only the
//! citizen's cookie and the Checkout return URLs carry: holding the id is
//! what makes it one's cart, as holding a notice number makes a notice
//! payable by its holder. The outcome page never believes the return URL
//! about money: a cart is paid when the Node's receipts say so.

use crate::Ctx;
use crate::checkout::{CART_REUSED_FOR, create_cart, station_connector, station_settings};
use crate::error::{AppError, At, Kind, Place};
use crate::portal::notice::{self, NoticeStatus};
use incasso_core::Cents;
use incasso_core::access::{Access, Area};
use incasso_core::codes::NoticeNumber;
use incasso_pagopa::connector::{Cart as CheckoutCart, CartNotice, ReturnUrls};
use incasso_store::{CartAdd, CartItemRecord, CartRecord, CheckoutClaim};
use std::time::Duration;

/// pagoPA's Checkout takes at most five notices in a cart.
pub const MAX_NOTICES: usize = 5;

/// How long a claim to open a Checkout cart holds: longer than the
/// connector's timeouts and retries; after it the claimant is taken to
/// have died and another request may open the cart.
const CLAIM_HOLDS_FOR: chrono::Duration = chrono::Duration::seconds(60);

/// How long a second "Paga" waits for the first to open the Checkout cart.
const WAIT_FOR_CLAIM: Duration = Duration::from_secs(20);

/// A notice in the cart, as it was when added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartItem {
    pub ente: String,
    pub nav: String,
    pub amount: Cents,
    pub description: String,
    pub company_name: String,
}

/// A cart as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartView {
    pub id: String,
    pub portal_ente: String,
    pub items: Vec<CartItem>,
    /// The address given the last time the cart went to Checkout.
    pub email: Option<String>,
}

impl CartView {
    pub fn total(&self) -> Cents {
        Cents(self.items.iter().map(|i| i.amount.0).sum())
    }
}

fn item(r: &CartItemRecord) -> CartItem {
    CartItem {
        ente: r.ente.clone(),
        nav: r.notice_number.clone(),
        amount: Cents(r.amount),
        description: r.description.clone(),
        company_name: r.company_name.clone(),
    }
}

/// A cart id is 32 lowercase hex digits: anything else was never given
/// out, and is not even looked up.
fn well_formed(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("random source");
    crate::keys::hex(&bytes)
}

/// The cart `id` if it exists and is not done with.
async fn open_record(ctx: &Ctx, id: Option<&str>) -> Result<Option<CartRecord>, AppError> {
    let Some(id) = id.filter(|id| well_formed(id)) else {
        return Ok(None);
    };
    let cart = ctx
        .store()
        .portal_cart(id)
        .await
        .at(Place::new("portal.cart", "", id))?;
    Ok(cart.filter(|c| c.closed_at.is_none()))
}

fn cart_not_found() -> AppError {
    AppError::new(
        Kind::NotFound,
        "CART_NOT_FOUND",
        "Il carrello non esiste più: cercare di nuovo gli avvisi da pagare.",
    )
}

fn refused(status: NoticeStatus, nav: &str) -> AppError {
    let (code, text) = status.refusal().unwrap_or(("NOTICE_NOT_PAYABLE", ""));
    AppError::conflict(code, format!("Avviso {nav}: {text}"))
}

/// Adds notice `nav` of Ente `ente` to the cart `cart_id` (a new cart,
/// made for the portal of `portal_ente`, when there is none or it is
/// done with); answers the cart's id. A notice already there is left as
/// it is; a sixth is refused (`CART_FULL`), as is one that cannot be paid
/// now or whose Ente takes no payments through this intermediary.
pub async fn add(
    ctx: &Ctx,
    cart_id: Option<&str>,
    portal_ente: &str,
    ente: &str,
    nav: &str,
) -> Result<String, AppError> {
    let parsed = notice::parse_notice_number(nav)?;
    let nav = parsed.as_str();
    let at = Place::new("portal.cart.add", ente, nav);
    let (stored, index, status) = notice::find(ctx, ente, nav).await?;
    if status != NoticeStatus::Payable {
        return Err(refused(status, nav));
    }
    // Every Ente of an installation is the intermediary's; one whose
    // station does not reach the Node cannot be in a Checkout cart.
    if station_settings(ctx, ente, nav).await.is_err() {
        return Err(AppError::conflict(
            "ENTE_NOT_SERVED",
            "Gli avvisi di questo ente non si possono pagare online da questo portale: \
             pagarli presso un prestatore di servizi di pagamento.",
        ));
    }
    let p = &stored.position;
    let o = &p.options[index];
    let record = CartItemRecord {
        ente: ente.to_string(),
        notice_number: nav.to_string(),
        amount: o.amount.0,
        description: o.description.clone(),
        company_name: p.company_name.clone(),
    };
    let id = match open_record(ctx, cart_id).await? {
        Some(c) => c.id,
        None => {
            ctx.store().get_ente(portal_ente).await.at(at)?;
            let id = new_id();
            ctx.store()
                .create_portal_cart(&id, portal_ente, ctx.now())
                .await
                .at(at)?;
            id
        }
    };
    match ctx
        .store()
        .add_portal_cart_item(&id, &record, MAX_NOTICES, ctx.now())
        .await
        .at(at)?
    {
        CartAdd::Added | CartAdd::AlreadyThere => Ok(id),
        CartAdd::Full => Err(AppError::conflict(
            "CART_FULL",
            format!(
                "Il carrello contiene già {MAX_NOTICES} avvisi, il massimo che pagoPA consente \
                 in un solo pagamento: pagare questi, poi aggiungere gli altri."
            ),
        )),
    }
}

/// Takes notice `nav` of Ente `ente` out of the cart.
pub async fn remove(ctx: &Ctx, cart_id: &str, ente: &str, nav: &str) -> Result<(), AppError> {
    let cart = open_record(ctx, Some(cart_id))
        .await?
        .ok_or_else(cart_not_found)?;
    ctx.store()
        .remove_portal_cart_item(&cart.id, ente, nav, ctx.now())
        .await
        .at(Place::new("portal.cart.remove", ente, nav))
}

/// The notices in the cart (none for a cart that does not exist or was
/// paid: a stale cookie is an empty cart).
pub async fn items(ctx: &Ctx, cart_id: &str) -> Result<Vec<CartItem>, AppError> {
    Ok(get(ctx, Some(cart_id))
        .await?
        .map(|c| c.items)
        .unwrap_or_default())
}

/// The cart with its notices, if it exists and is not paid.
pub async fn get(ctx: &Ctx, cart_id: Option<&str>) -> Result<Option<CartView>, AppError> {
    Ok(open_record(ctx, cart_id).await?.map(|c| CartView {
        items: c.items.iter().map(item).collect(),
        id: c.id,
        portal_ente: c.portal_ente,
        email: c.email,
    }))
}

/// The email typed for the receipt, checked: empty is none.
pub fn parse_email(email: Option<&str>) -> Result<Option<String>, AppError> {
    let Some(email) = email.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    if email.len() > 254 || !incasso_core::text::is_plausible_email(email) {
        return Err(AppError::invalid(
            "BAD_EMAIL",
            "L'indirizzo email non è valido: scriverlo come nome@esempio.it, oppure lasciare \
             vuoto il campo.",
        ));
    }
    Ok(Some(email.to_string()))
}

/// Sends the cart to pagoPA Checkout: ONE Checkout cart for all its
/// notices, through the connector of the first notice's station, with
/// the payer's email for pagoPA's receipt; answers the Checkout URL.
/// Every notice is checked again first (still payable, same amount).
/// Pressing "Paga" twice, or from two tabs, within [`CART_REUSED_FOR`]
/// answers the same Checkout cart: never two.
pub async fn open_checkout(
    ctx: &Ctx,
    cart_id: &str,
    email: Option<&str>,
) -> Result<String, AppError> {
    let email = parse_email(email)?;
    let cart = open_record(ctx, Some(cart_id))
        .await?
        .ok_or_else(cart_not_found)?;
    let at = Place::new("portal.cart.checkout", &cart.portal_ente, &cart.id);
    if let Some(url) = reusable(ctx, &cart, email.as_deref()) {
        return Ok(url);
    }
    if cart.items.is_empty() {
        return Err(AppError::invalid(
            "CART_EMPTY",
            "Il carrello è vuoto: aggiungere almeno un avviso da pagare.",
        ));
    }
    let mut notices = Vec::with_capacity(cart.items.len());
    for i in &cart.items {
        let (stored, index, status) = notice::find(ctx, &i.ente, &i.notice_number).await?;
        if status != NoticeStatus::Payable {
            return Err(AppError::conflict(
                status.refusal().map_or("NOTICE_NOT_PAYABLE", |r| r.0),
                format!(
                    "Avviso {} ({}): {} Toglierlo dal carrello per pagare gli altri.",
                    i.notice_number,
                    i.company_name,
                    status.refusal().map_or("", |r| r.1)
                ),
            ));
        }
        let amount = stored.position.options[index].amount;
        if amount.0 != i.amount {
            ctx.store()
                .update_portal_cart_amount(&cart.id, &i.ente, &i.notice_number, amount.0)
                .await
                .at(at)?;
            return Err(AppError::conflict(
                "AMOUNT_CHANGED",
                format!(
                    "L'importo dell'avviso {} è cambiato da {} € a {} €: controllare il \
                     riepilogo e confermare di nuovo.",
                    i.notice_number,
                    Cents(i.amount).to_italian(),
                    amount.to_italian()
                ),
            ));
        }
        notices.push(CartNotice {
            notice_number: i.notice_number.clone(),
            fiscal_code: i.ente.clone(),
            amount: i.amount,
            company_name: i.company_name.chars().take(140).collect(),
            description: i.description.chars().take(140).collect(),
        });
    }
    match ctx
        .store()
        .claim_portal_checkout(&cart.id, ctx.now(), ctx.now() - CLAIM_HOLDS_FOR)
        .await
        .at(at)?
    {
        CheckoutClaim::Claimed => {}
        CheckoutClaim::Busy => return wait_for_checkout(ctx, &cart.id, email.as_deref()).await,
    }
    // A press that read the cart before another's Checkout cart was
    // recorded, and claimed it after that claim was let go, finds the
    // URL now: the cart was read before the claim, so read it again.
    if let Some(url) = open_record(ctx, Some(&cart.id))
        .await?
        .and_then(|fresh| reusable(ctx, &fresh, email.as_deref()))
    {
        ctx.store().release_portal_checkout(&cart.id).await.at(at)?;
        return Ok(url);
    }
    let opened = async {
        let first = &cart.items[0];
        let connector = station_connector(ctx, &first.ente, &first.notice_number).await?;
        let back = format!(
            "{}/portale/{}/carrello/esito",
            ctx.settings().public_url,
            cart.portal_ente
        );
        let checkout_cart = CheckoutCart {
            payment_notices: notices,
            return_urls: ReturnUrls {
                return_ok_url: format!("{back}/ok?c={}", cart.id),
                return_cancel_url: format!("{back}/annullato?c={}", cart.id),
                return_error_url: format!("{back}/errore?c={}", cart.id),
            },
            email_notice: email.clone(),
            id_cart: Some(cart.id.clone()),
        };
        create_cart(connector.as_ref(), &first.ente, &checkout_cart).await
    }
    .await;
    match opened {
        Ok(url) => {
            ctx.store()
                .record_portal_checkout(&cart.id, email.as_deref(), &url, ctx.now())
                .await
                .at(at)?;
            Ok(url)
        }
        Err(e) => {
            ctx.store().release_portal_checkout(&cart.id).await.at(at)?;
            Err(e)
        }
    }
}

/// The Checkout cart opened for this content and this email in the last
/// [`CART_REUSED_FOR`].
fn reusable(ctx: &Ctx, cart: &CartRecord, email: Option<&str>) -> Option<String> {
    let fresh = cart
        .checkout_at
        .is_some_and(|t| t >= ctx.now() - CART_REUSED_FOR);
    (fresh && cart.email.as_deref() == email)
        .then(|| cart.checkout_url.clone())
        .flatten()
}

/// Another request is opening the cart's Checkout cart: its URL, once it
/// is there.
async fn wait_for_checkout(
    ctx: &Ctx,
    cart_id: &str,
    email: Option<&str>,
) -> Result<String, AppError> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_CLAIM;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let cart = open_record(ctx, Some(cart_id))
            .await?
            .ok_or_else(cart_not_found)?;
        if let Some(url) = reusable(ctx, &cart, email) {
            return Ok(url);
        }
    }
    Err(AppError::conflict(
        "CHECKOUT_BUSY",
        "Il pagamento è già in preparazione: attendere qualche istante e riprovare.",
    ))
}

/// What happened to a cart sent to Checkout, as the outcome page says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeState {
    /// The Node's receipts say every notice is paid.
    Paid,
    /// The citizen came back saying "paid", but not every receipt is in
    /// yet: pagoPA confirms within minutes.
    Pending,
    /// Some notices are paid, others not, and Checkout reported an error.
    Partial,
    /// The citizen cancelled: nothing was charged.
    Cancelled,
    /// Checkout reported an error and nothing is paid.
    Error,
}

impl OutcomeState {
    pub fn code(self) -> &'static str {
        match self {
            OutcomeState::Paid => "PAID",
            OutcomeState::Pending => "PENDING",
            OutcomeState::Partial => "PARTIAL",
            OutcomeState::Cancelled => "CANCELLED",
            OutcomeState::Error => "ERROR",
        }
    }
}

/// A cart's outcome: its notices, each with whether its receipt is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartOutcome {
    pub state: OutcomeState,
    pub items: Vec<(CartItem, bool)>,
    pub email: Option<String>,
}

impl CartOutcome {
    pub fn total(&self) -> Cents {
        Cents(self.items.iter().map(|(i, _)| i.amount.0).sum())
    }
}

/// What Checkout sent the citizen back to say (`ok`, `annullato`,
/// `errore`), and the cart, from the return URL, checked against the
/// store: a paid cart is one whose every notice has the Node's receipt,
/// whatever the URL says. A cart id that was never given out, or another
/// portal's, is one clear error.
pub async fn outcome(
    ctx: &Ctx,
    portal_ente: &str,
    cart_id: &str,
    returned: &str,
) -> Result<CartOutcome, AppError> {
    let tampered = || {
        AppError::new(
            Kind::NotFound,
            "CART_NOT_FOUND",
            "Non risulta nessun pagamento per questo collegamento: potrebbe essere incompleto \
             o alterato. Se è stato addebitato un importo, la ricevuta arriva comunque \
             all'indirizzo email indicato; altrimenti ripetere il pagamento.",
        )
    };
    if !well_formed(cart_id) || !matches!(returned, "ok" | "annullato" | "errore") {
        return Err(tampered());
    }
    let at = Place::new("portal.cart.outcome", portal_ente, cart_id);
    let cart = ctx
        .store()
        .portal_cart(cart_id)
        .await
        .at(at)?
        .filter(|c| c.portal_ente == portal_ente && !c.items.is_empty())
        .ok_or_else(tampered)?;
    let mut items = Vec::with_capacity(cart.items.len());
    for i in &cart.items {
        let iuv = NoticeNumber::parse(&i.notice_number)
            .map(|p| p.iuv)
            .unwrap_or_default();
        let paid = ctx
            .store()
            .has_ok_receipt(&i.ente, &iuv, &i.notice_number)
            .await
            .at(at)?;
        items.push((item(i), paid));
    }
    let paid = items.iter().filter(|(_, p)| *p).count();
    let state = if paid == items.len() {
        OutcomeState::Paid
    } else {
        match returned {
            "ok" => OutcomeState::Pending,
            _ if paid > 0 => OutcomeState::Partial,
            "annullato" => OutcomeState::Cancelled,
            _ => OutcomeState::Error,
        }
    };
    match state {
        OutcomeState::Paid if cart.closed_at.is_none() => ctx
            .store()
            .close_portal_cart(&cart.id, ctx.now())
            .await
            .at(at)?,
        // Back without paying: the next "Paga" opens a new Checkout cart
        // (pagoPA does not take the citizen back into this one).
        OutcomeState::Cancelled | OutcomeState::Error | OutcomeState::Partial => {
            ctx.store().forget_portal_checkout(&cart.id).await.at(at)?
        }
        _ => {}
    }
    Ok(CartOutcome {
        state,
        items,
        email: cart.email,
    })
}

/// The email the payer gave for the newest cart that held notice `nav`
/// of Ente `ente`, for sending the receipt there. Only for incasso itself
/// and those who may read the Ente's positions: an address is personal.
pub async fn payer_email(ctx: &Ctx, ente: &str, nav: &str) -> Option<String> {
    ctx.caller
        .require(ente, Area::Positions, Access::Read)
        .ok()?;
    match ctx.store().portal_payer_email(ente, nav).await {
        Ok(email) => email,
        Err(e) => {
            tracing::warn!(ente, nav, error = %e, "email del pagatore non letta");
            None
        }
    }
}
