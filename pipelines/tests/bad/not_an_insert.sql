-- error: 2:1: INSERT INTO
SELECT count(*) FROM metrics;
