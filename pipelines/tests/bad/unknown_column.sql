-- error: 3:8: nme
INSERT INTO out
SELECT nme, count(*) AS n
FROM metrics
GROUP BY nme;
