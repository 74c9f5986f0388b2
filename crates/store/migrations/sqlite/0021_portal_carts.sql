-- The citizen portal's carts (up to 5 notices, of one or several Enti of
-- the intermediary), held server-side under an unguessable id that only
-- the citizen's cookie and the Checkout return URLs carry.
-- `checkout_url`: the Checkout cart opened for the cart's content, reused
-- for a while so that pressing "Paga" twice never opens two; while one
-- request opens it (`checkout_claimed_at`) the others wait for its URL. A
-- change of content forgets it. `email`: where the payer wants the
-- receipt. `closed_at`: paid, the cart is done.
CREATE TABLE portal_carts (
    id TEXT PRIMARY KEY,
    portal_ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    email TEXT,
    checkout_url TEXT,
    checkout_at BIGINT,
    checkout_claimed_at BIGINT,
    closed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE portal_cart_items (
    cart_id TEXT NOT NULL REFERENCES portal_carts(id),
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    notice_number TEXT NOT NULL,
    amount BIGINT NOT NULL,
    description TEXT NOT NULL,
    company_name TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (cart_id, ente, notice_number)
);
-- The payer's email of a notice: the newest cart that holds it.
CREATE INDEX portal_cart_items_notice ON portal_cart_items (ente, notice_number);
