-- HTTP error ratio and latency per service per minute, from access-log records whose
-- attributes carry `status` and `duration_ms` (as Vector, Fluent Bit or an OTel collector
-- ship them). p99 is approximate (t-digest); see docs/sql.md for its error.
INSERT INTO http_service_1m
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  labels['service'] AS service,
  count(*) AS requests,
  count(*) FILTER (WHERE CAST(attributes['status'] AS INT) >= 500) AS errors,
  CAST(count(*) FILTER (WHERE CAST(attributes['status'] AS INT) >= 500) AS DOUBLE)
    / CAST(count(*) AS DOUBLE) AS error_ratio,
  max(CAST(attributes['duration_ms'] AS DOUBLE)) AS latency_max_ms,
  approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY CAST(attributes['duration_ms'] AS DOUBLE)) AS latency_p99_ms,
  count(DISTINCT attributes['path']) AS paths
FROM logs
WHERE attributes['status'] IS NOT NULL
GROUP BY tumble(time, INTERVAL '1 minute'), labels['service'];
