-- The Checkout cart opened for a notice, reused while it is open: pressing
-- "Paga" twice, or from two tabs, must not make two carts.
CREATE TABLE checkout_carts (
    ente TEXT NOT NULL REFERENCES enti(fiscal_code),
    notice_number TEXT NOT NULL,
    checkout_url TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (ente, notice_number)
);
