-- error: 3:10: @for: "three" is not a duration
-- A setting's value is checked where it stands.
-- @for: three
INSERT INTO alerts
SELECT tumble(time, INTERVAL '1 minute') AS window_start, count(*) AS n
FROM events
GROUP BY tumble(time, INTERVAL '1 minute');
