-- SPID/CIE sign-in through an OpenID Connect identity proxy (issue 16):
-- each authorization request started and not yet come back, under the
-- SHA-256 of its state, with the nonce and the PKCE verifier to check the
-- answer against. A request is taken out when it comes back (once), so
-- any process serving the back office can finish what another started.
CREATE TABLE oidc_requests (
    state_hash TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX oidc_requests_by_age ON oidc_requests (created_at);
