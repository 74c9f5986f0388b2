-- The SIOPE code of an accertamento's revenue (the `codice_cge` of OPI's
-- classificazione): with it, a reversale splits its amount by SIOPE code
-- too. NULL when the Ente has not given it.
ALTER TABLE accertamenti ADD COLUMN siope_code TEXT;
