-- When will each filesystem be full? `time_until(x, 0)` forecasts the free bytes (trend and
-- daily seasonality, per host and mount point) and gives the seconds until they reach 0, or
-- NULL when no crossing is forecast within its horizon. disk_full_predicted.sql alerts on it.
INSERT INTO disk_full_eta_1m
SELECT
  tumble(window_start, INTERVAL '1 minute') AS window_start,
  host,
  mountpoint,
  min(avail_min_bytes) AS avail_bytes,
  time_until(min(avail_min_bytes), 0) AS seconds_to_full
FROM node_disk_1m
WHERE revision = 0
GROUP BY tumble(window_start, INTERVAL '1 minute'), host, mountpoint;
