-- Deploy verification, stage 1 of 2 (stage 2: deploy_metrics.sql). Per scraped series and 10 s
-- window: how much each `http_requests_total{service,version,code}` counter went up (resets
-- handled; a counter must be increased per series before series are summed), and the mean of
-- the gauges a verification compares — the p99 of the `http_request_duration_seconds` summary
-- (its `quantile="0.99"` series, in seconds) and `worker_pool_saturation_ratio` (busy workers
-- over the pool size, in [0, 1]). `instance` keeps two replicas of one version apart.
INSERT INTO deploy_series_10s
SELECT
  tumble(time, INTERVAL '10 seconds') AS window_start,
  labels['service'] AS service,
  labels['version'] AS version,
  labels['instance'] AS instance,
  name,
  labels['code'] AS code,
  increase(value, time) FILTER (WHERE name = 'http_requests_total') AS requests,
  avg(value) FILTER (WHERE name <> 'http_requests_total') AS gauge
FROM metrics
WHERE labels['service'] IS NOT NULL
  AND NOT isnan(value)
  AND (name = 'http_requests_total'
    OR (name = 'http_request_duration_seconds' AND labels['quantile'] = '0.99')
    OR name = 'worker_pool_saturation_ratio')
GROUP BY tumble(time, INTERVAL '10 seconds'), labels['service'], labels['version'],
  labels['instance'], name, labels['code'];
