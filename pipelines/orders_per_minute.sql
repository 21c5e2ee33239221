-- A business KPI: orders per minute, from `order` events.
INSERT INTO orders_1m
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  count(*) AS orders
FROM events
WHERE type = 'order'
GROUP BY tumble(time, INTERVAL '1 minute');
