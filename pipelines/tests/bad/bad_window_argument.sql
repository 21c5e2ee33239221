-- error: 4:3: tumble
INSERT INTO out
SELECT
  tumble(value, INTERVAL '1 minute') AS w, count(*) AS n
FROM metrics
GROUP BY 1;
