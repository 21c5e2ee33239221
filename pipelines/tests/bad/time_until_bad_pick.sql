-- error: 5:3: the third argument picks the crossing time
INSERT INTO eta
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  time_until(avg(value), 90, 'soonest') AS eta
FROM metrics
GROUP BY tumble(time, INTERVAL '1 minute');
