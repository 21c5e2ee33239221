-- error: 5:7: use it as a whole SELECT column
INSERT INTO scored
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  2 * anomaly(avg(value)) AS doubled
FROM metrics
GROUP BY tumble(time, INTERVAL '1 minute');
