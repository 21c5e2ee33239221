-- error: 4:3: an alert rule judges its condition once per tumbling window
INSERT INTO alerts
SELECT
  session(time, INTERVAL '5 minutes') AS s,
  labels['service'] AS service,
  count(*) AS n
FROM logs
GROUP BY session(time, INTERVAL '5 minutes'), labels['service']
HAVING count(*) > 100;
