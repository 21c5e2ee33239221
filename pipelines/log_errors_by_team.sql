-- Error log lines per owning team and tier per minute: logs joined with the service catalog
-- (pipelines/tables/services.csv: service → team, tier). Services missing from the catalog
-- count under team 'unowned', so a new service is visible rather than silently dropped.
INSERT INTO log_errors_by_team_1m
SELECT
  tumble(l.time, INTERVAL '1 minute') AS window_start,
  COALESCE(s.team, 'unowned') AS team,
  s.tier AS tier,
  count(*) AS errors,
  count(DISTINCT l.labels['service']) AS services
FROM logs l
LEFT JOIN services s ON l.labels['service'] = s.service
WHERE lower(l.severity) = 'error'
GROUP BY tumble(l.time, INTERVAL '1 minute'), COALESCE(s.team, 'unowned'), s.tier;
