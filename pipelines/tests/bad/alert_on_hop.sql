-- error: 4:3: tumbling window
INSERT INTO alerts
SELECT
  hop(time, INTERVAL '1 minute', INTERVAL '5 minutes') AS window_start,
  count(*) AS n
FROM events
GROUP BY hop(time, INTERVAL '1 minute', INTERVAL '5 minutes')
HAVING count(*) < 10;
