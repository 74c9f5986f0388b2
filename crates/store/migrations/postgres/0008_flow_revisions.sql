-- FdR 3 numbers a flow's versions (`revision`); a flow fetched through it
-- keeps its revision, so that the next fetch knows which it holds. NULL for
-- flows that came as FlussoRiversamento documents (SOAP, upload).
ALTER TABLE reporting_flows ADD COLUMN revision BIGINT;
