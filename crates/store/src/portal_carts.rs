//! The citizen portal's carts (migration 0021): up to a few notices held
//! server-side under an unguessable id, the Checkout cart opened for them,
//! and the email the payer gave for the receipt.

use crate::time::{from_micros, to_micros};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// A notice in a cart, as it was when added (the amount is checked again
/// before Checkout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartItemRecord {
    pub ente: String,
    pub notice_number: String,
    pub amount: i64,
    pub description: String,
    pub company_name: String,
}

/// A cart and its notices, oldest added first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartRecord {
    pub id: String,
    pub portal_ente: String,
    pub email: Option<String>,
    pub checkout_url: Option<String>,
    pub checkout_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub items: Vec<CartItemRecord>,
}

/// What adding a notice to a cart did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CartAdd {
    Added,
    /// It was there already: nothing changed.
    AlreadyThere,
    /// The cart holds `max` notices already.
    Full,
}

/// The store's answer to "may I open the Checkout cart?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutClaim {
    /// Yours: open it, then [`Store::record_portal_checkout`].
    Claimed,
    /// Another request is opening it since this instant.
    Busy,
}

impl Store {
    pub async fn create_portal_cart(
        &self,
        id: &str,
        portal_ente: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO portal_carts (id, portal_ente, created_at, updated_at)
             VALUES ($1, $2, $3, $3)",
        )
        .bind(id)
        .bind(portal_ente)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The cart `id` with its notices; `None` if there is no such cart.
    pub async fn portal_cart(&self, id: &str) -> Result<Option<CartRecord>> {
        let Some(row) = sqlx::query(
            "SELECT id, portal_ente, email, checkout_url, checkout_at, closed_at, created_at
             FROM portal_carts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let items = sqlx::query(
            "SELECT ente, notice_number, amount, description, company_name
             FROM portal_cart_items WHERE cart_id = $1
             ORDER BY added_at, ente, notice_number",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| {
            Ok(CartItemRecord {
                ente: r.try_get("ente")?,
                notice_number: r.try_get("notice_number")?,
                amount: r.try_get("amount")?,
                description: r.try_get("description")?,
                company_name: r.try_get("company_name")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let at = |col: &str| -> Result<Option<DateTime<Utc>>> {
            Ok(row.try_get::<Option<i64>, _>(col)?.map(from_micros))
        };
        Ok(Some(CartRecord {
            id: row.try_get("id")?,
            portal_ente: row.try_get("portal_ente")?,
            email: row.try_get("email")?,
            checkout_url: row.try_get("checkout_url")?,
            checkout_at: at("checkout_at")?,
            closed_at: at("closed_at")?,
            created_at: from_micros(row.try_get("created_at")?),
            items,
        }))
    }

    /// Adds a notice unless the cart holds it already or holds `max`. The
    /// cart's row is updated first so that concurrent adds to one cart take
    /// turns (PostgreSQL's row lock; SQLite has one writer) and never pass
    /// `max` together. A change of content forgets the Checkout cart.
    pub async fn add_portal_cart_item(
        &self,
        cart_id: &str,
        item: &CartItemRecord,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<CartAdd> {
        let mut tx = self.write_tx().await?;
        let touched = sqlx::query("UPDATE portal_carts SET updated_at = $2 WHERE id = $1")
            .bind(cart_id)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        if touched.rows_affected() == 0 {
            return Err(StoreError::NotFound("carrello"));
        }
        let there = sqlx::query(
            "SELECT 1 FROM portal_cart_items
             WHERE cart_id = $1 AND ente = $2 AND notice_number = $3",
        )
        .bind(cart_id)
        .bind(&item.ente)
        .bind(&item.notice_number)
        .fetch_optional(&mut *tx)
        .await?;
        if there.is_some() {
            return Ok(CartAdd::AlreadyThere);
        }
        let count: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM portal_cart_items WHERE cart_id = $1",
        )
        .bind(cart_id)
        .fetch_one(&mut *tx)
        .await?;
        if count >= max as i64 {
            return Ok(CartAdd::Full);
        }
        sqlx::query(
            "INSERT INTO portal_cart_items
                 (cart_id, ente, notice_number, amount, description, company_name, added_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(cart_id)
        .bind(&item.ente)
        .bind(&item.notice_number)
        .bind(item.amount)
        .bind(&item.description)
        .bind(&item.company_name)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        forget_checkout(&mut tx, cart_id).await?;
        tx.commit().await?;
        Ok(CartAdd::Added)
    }

    /// Takes a notice out of a cart (nothing if it is not there).
    pub async fn remove_portal_cart_item(
        &self,
        cart_id: &str,
        ente: &str,
        notice_number: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let gone = sqlx::query(
            "DELETE FROM portal_cart_items
             WHERE cart_id = $1 AND ente = $2 AND notice_number = $3",
        )
        .bind(cart_id)
        .bind(ente)
        .bind(notice_number)
        .execute(&mut *tx)
        .await?;
        if gone.rows_affected() > 0 {
            sqlx::query("UPDATE portal_carts SET updated_at = $2 WHERE id = $1")
                .bind(cart_id)
                .bind(to_micros(now))
                .execute(&mut *tx)
                .await?;
            forget_checkout(&mut tx, cart_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The amount of a notice in a cart changed at its Ente: the cart shows
    /// the new one, and the Checkout cart made for the old is forgotten.
    pub async fn update_portal_cart_amount(
        &self,
        cart_id: &str,
        ente: &str,
        notice_number: &str,
        amount: i64,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE portal_cart_items SET amount = $4
             WHERE cart_id = $1 AND ente = $2 AND notice_number = $3",
        )
        .bind(cart_id)
        .bind(ente)
        .bind(notice_number)
        .bind(amount)
        .execute(&mut *tx)
        .await?;
        forget_checkout(&mut tx, cart_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims the opening of the cart's Checkout cart, unless another
    /// request claimed it after `stale_before` (an older claim is of a
    /// request that died).
    pub async fn claim_portal_checkout(
        &self,
        cart_id: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<CheckoutClaim> {
        let res = sqlx::query(
            "UPDATE portal_carts SET checkout_claimed_at = $2
             WHERE id = $1 AND (checkout_claimed_at IS NULL OR checkout_claimed_at < $3)",
        )
        .bind(cart_id)
        .bind(to_micros(now))
        .bind(to_micros(stale_before))
        .execute(&self.writer)
        .await?;
        Ok(if res.rows_affected() == 1 {
            CheckoutClaim::Claimed
        } else {
            CheckoutClaim::Busy
        })
    }

    /// Lets go of a claim without a Checkout cart (opening it failed).
    pub async fn release_portal_checkout(&self, cart_id: &str) -> Result<()> {
        sqlx::query("UPDATE portal_carts SET checkout_claimed_at = NULL WHERE id = $1")
            .bind(cart_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Records the Checkout cart opened and the payer's email; releases
    /// the claim.
    pub async fn record_portal_checkout(
        &self,
        cart_id: &str,
        email: Option<&str>,
        checkout_url: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE portal_carts SET email = $2, checkout_url = $3, checkout_at = $4,
                 checkout_claimed_at = NULL, updated_at = $4
             WHERE id = $1",
        )
        .bind(cart_id)
        .bind(email)
        .bind(checkout_url)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The citizen came back from Checkout without paying: the next "Paga"
    /// opens a new Checkout cart.
    pub async fn forget_portal_checkout(&self, cart_id: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        forget_checkout(&mut tx, cart_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every notice of the cart is paid: it is done, and a new one starts.
    pub async fn close_portal_cart(&self, cart_id: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE portal_carts SET closed_at = $2, updated_at = $2
             WHERE id = $1 AND closed_at IS NULL",
        )
        .bind(cart_id)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The email given for the newest cart that held the notice (an email
    /// is recorded only with a Checkout cart).
    pub async fn portal_payer_email(
        &self,
        ente: &str,
        notice_number: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT c.email FROM portal_cart_items i
             JOIN portal_carts c ON c.id = i.cart_id
             WHERE i.ente = $1 AND i.notice_number = $2
               AND c.email IS NOT NULL
             ORDER BY c.updated_at DESC LIMIT 1",
        )
        .bind(ente)
        .bind(notice_number)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(r.try_get("email")?)).transpose()
    }

    /// Whether the Node sent a positive receipt for the notice.
    pub async fn has_ok_receipt(&self, ente: &str, iuv: &str, notice_number: &str) -> Result<bool> {
        Ok(sqlx::query(
            "SELECT 1 FROM receipts
             WHERE ente = $1 AND owner_ente = $1 AND iuv = $2 AND notice_number = $3
               AND outcome = 'OK'
             LIMIT 1",
        )
        .bind(ente)
        .bind(iuv)
        .bind(notice_number)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }
}

async fn forget_checkout(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    cart_id: &str,
) -> Result<()> {
    sqlx::query("UPDATE portal_carts SET checkout_url = NULL, checkout_at = NULL WHERE id = $1")
        .bind(cart_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
