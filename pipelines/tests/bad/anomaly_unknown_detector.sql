-- error: 5:3: unknown detector "holt"
INSERT INTO scored
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  anomaly(avg(value), 'holt') AS score
FROM metrics
GROUP BY tumble(time, INTERVAL '1 minute');
