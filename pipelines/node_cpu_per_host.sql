-- CPU time per host, CPU and mode per minute, from node_exporter's node_cpu_seconds_total
-- counter: seconds spent in the minute and the share of one CPU (rate), counter resets handled.
INSERT INTO node_cpu_1m
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  labels['instance'] AS host,
  labels['cpu'] AS cpu,
  labels['mode'] AS mode,
  increase(value, time) AS seconds,
  rate(value, time) AS utilization
FROM metrics
WHERE name = 'node_cpu_seconds_total'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance'], labels['cpu'], labels['mode'];
