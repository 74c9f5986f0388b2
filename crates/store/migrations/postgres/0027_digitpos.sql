-- DigitPOS: idempotency keys and the return hosts an Ente registered (issue 18): reserved, filled by its work.
SELECT 1;
