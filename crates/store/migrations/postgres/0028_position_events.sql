-- Position events and webhook deliveries, the outbox (issue 18): reserved, filled by its work.
SELECT 1;
