-- error: 2:4: unknown setting @fro
-- @fro: 3
INSERT INTO alerts
SELECT tumble(time, INTERVAL '1 minute') AS window_start, count(*) AS n
FROM events
GROUP BY tumble(time, INTERVAL '1 minute');
