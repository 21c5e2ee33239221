-- Predictive alert: a filesystem is forecast to be full within 4 hours, for 5 minutes in a row
-- (so one noisy minute does not page). Reads disk_full_eta_1m (disk_full_forecast.sql).
-- @for: 5
-- @severity: warning
-- @summary: {{mountpoint}} on {{host}} is forecast to be full in {{seconds_to_full}} s
INSERT INTO alerts
SELECT
  tumble(window_start, INTERVAL '1 minute') AS window_start,
  'DiskFullPredicted' AS alertname,
  host,
  mountpoint,
  min(seconds_to_full) AS seconds_to_full
FROM disk_full_eta_1m
WHERE revision = 0
GROUP BY tumble(window_start, INTERVAL '1 minute'), host, mountpoint
HAVING min(seconds_to_full) < 4 * 3600;
