-- error: 3:4: header comment
INSERT INTO alerts
-- @for: 3
SELECT tumble(time, INTERVAL '1 minute') AS window_start, count(*) AS n
FROM events
GROUP BY tumble(time, INTERVAL '1 minute');
