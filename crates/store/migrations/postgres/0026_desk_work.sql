-- Sportello Digitale: positions issued at a desk, and each desk's day closures (issue 18): reserved, filled by its work.
SELECT 1;
