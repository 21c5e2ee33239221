-- error: 8:8: use it as a whole SELECT column
INSERT INTO scored
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  avg(value) AS v
FROM metrics
GROUP BY tumble(time, INTERVAL '1 minute')
HAVING anomaly(avg(value)) > 0.5;
