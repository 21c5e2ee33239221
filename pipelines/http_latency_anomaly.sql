-- Anomalous p99 latency and error ratio per service, minute by minute, from http_service_1m.
-- `anomaly(x, 'ensemble', 0.5)` keeps a detector per service and column (seasonal baseline,
-- persistence and drift combined into one calibrated score in [0, 1]); the column holds that
-- score (NULL while the detector warms up: 16 minutes), and a score >= 0.5 (one in 100,000
-- for that series) writes one anomaly event (type 'anomaly', with the expected value and band)
-- per episode, which the alerting engine uses as root-cause evidence. See docs/detection.md.
INSERT INTO http_anomaly_1m
SELECT
  tumble(window_start, INTERVAL '1 minute') AS window_start,
  service,
  max(latency_p99_ms) AS latency_p99_ms,
  anomaly(max(latency_p99_ms), 'ensemble', 0.5) AS latency_score,
  max(error_ratio) AS error_ratio,
  anomaly(max(error_ratio), 'ensemble', 0.5) AS error_score
FROM http_service_1m
WHERE revision = 0
GROUP BY tumble(window_start, INTERVAL '1 minute'), service;
