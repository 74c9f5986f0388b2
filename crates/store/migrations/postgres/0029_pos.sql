-- PosPA: terminals, POS sessions and their positions (issue 18): reserved, filled by its work.
SELECT 1;
