-- error: 2:10: @for applies to alert rules only
-- @for: 3
INSERT INTO orders_low
SELECT tumble(time, INTERVAL '1 minute') AS window_start, count(*) AS n
FROM events
GROUP BY tumble(time, INTERVAL '1 minute')
HAVING count(*) < 10;
