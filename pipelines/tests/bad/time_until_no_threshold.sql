-- error: 5:3: takes (value, threshold
INSERT INTO eta
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  time_until(avg(value)) AS eta
FROM metrics
GROUP BY tumble(time, INTERVAL '1 minute');
