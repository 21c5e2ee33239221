-- error: 4:6: metricz
INSERT INTO out
SELECT count(*) AS n
FROM metricz;
