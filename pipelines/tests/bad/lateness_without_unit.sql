-- error: 2:15: needs a unit
-- @lateness: 120
INSERT INTO orders_2m
SELECT tumble(time, INTERVAL '1 minute') AS window_start, count(*) AS n
FROM events
GROUP BY tumble(time, INTERVAL '1 minute');
