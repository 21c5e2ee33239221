-- Deploy verification metrics per service and version every 10 s: the stream the `[deploys]`
-- verification reads by default (`deploy_metrics_10s`: error_ratio, latency_p99_ms, saturation),
-- from the per-series windows of deploy_series.sql. error_ratio = 5xx requests / all requests
-- (NULL without requests); latency_p99_ms = the worst instance's p99 (quantiles of summaries
-- cannot be merged, so the worst one stands for the version); saturation = the mean over the
-- version's instances. `revision = 0` takes each upstream window once.
INSERT INTO deploy_metrics_10s
SELECT
  tumble(window_start, INTERVAL '10 seconds') AS window_start,
  service,
  version,
  sum(requests) FILTER (WHERE name = 'http_requests_total') AS requests,
  sum(requests) FILTER (WHERE name = 'http_requests_total' AND code LIKE '5%') AS errors,
  sum(requests) FILTER (WHERE name = 'http_requests_total' AND code LIKE '5%')
    / nullif(sum(requests) FILTER (WHERE name = 'http_requests_total'), 0) AS error_ratio,
  max(gauge) FILTER (WHERE name = 'http_request_duration_seconds') * 1000 AS latency_p99_ms,
  avg(gauge) FILTER (WHERE name = 'worker_pool_saturation_ratio') AS saturation
FROM deploy_series_10s
WHERE revision = 0
GROUP BY tumble(window_start, INTERVAL '10 seconds'), service, version;
