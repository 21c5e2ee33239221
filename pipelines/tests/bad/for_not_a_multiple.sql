-- error: 2:10: not a multiple of the window (1m)
-- @for: 90s
INSERT INTO alerts
SELECT tumble(time, INTERVAL '1 minute') AS window_start, count(*) AS n
FROM events
GROUP BY tumble(time, INTERVAL '1 minute')
HAVING count(*) < 10;
