-- error: 3:24: {{servce}} names no column
-- @severity: warning
-- @summary: errors of {{servce}}: {{n}}
INSERT INTO alerts
SELECT tumble(time, INTERVAL '1 minute') AS window_start, labels['service'] AS service, count(*) AS n
FROM logs
WHERE severity = 'error'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['service']
HAVING count(*) > 100;
