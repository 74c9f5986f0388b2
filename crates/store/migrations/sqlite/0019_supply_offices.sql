-- The offices of the operator who loaded a supply, when they were limited
-- to some (as ",UT,UR,": each code between commas); NULL when loaded by
-- someone who was not (an administrator, a program, the command line).
-- An operator limited to offices sees a supply only when all of these are
-- theirs: its row report and notices hold its debtors.
ALTER TABLE supplies ADD COLUMN offices TEXT;
