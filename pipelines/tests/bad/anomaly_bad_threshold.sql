-- error: 5:3: the threshold must be a number literal in (0, 1]
INSERT INTO scored
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  anomaly(avg(value), 'ewma', 3) AS score
FROM metrics
GROUP BY tumble(time, INTERVAL '1 minute');
