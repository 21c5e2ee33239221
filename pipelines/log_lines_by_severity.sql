-- Log lines per service and severity per minute.
INSERT INTO log_lines_1m
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  labels['service'] AS service,
  severity,
  count(*) AS lines
FROM logs
GROUP BY tumble(time, INTERVAL '1 minute'), labels['service'], severity;
