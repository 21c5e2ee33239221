-- Business KPI drop alert: fewer than 100 orders in a minute, three minutes in a row. Copy it
-- for any KPI carried by events and set the threshold to the floor of your normal traffic.
-- Every event is counted, not only orders, so that a minute with events but no order still
-- yields a row (orders = 0): a minute without a row is a minute the condition did not hold,
-- which would resolve the alert. When no event arrives at all the watermark stands still, so
-- the alert neither fires nor resolves until events flow again.
-- @for: 3
-- @severity: critical
-- @summary: only {{orders}} orders in the minute (alert below 100 for 3 minutes)
INSERT INTO alerts
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  'OrdersPerMinuteLow' AS alertname,
  count(*) FILTER (WHERE type = 'order') AS orders
FROM events
GROUP BY tumble(time, INTERVAL '1 minute')
HAVING count(*) FILTER (WHERE type = 'order') < 100;
