-- error: 2:18: AS in the SELECT
INSERT INTO out (a)
SELECT count(*) FROM logs;
