WITH errs AS (
  SELECT date_bin(INTERVAL '1 minute', time) AS minute, labels['service'] AS service, sum(value) AS errors
  FROM metrics WHERE name = 'http_requests_total' AND labels['code'] LIKE '5%' AND time > now() - INTERVAL '1 hour'
  GROUP BY 1, 2
), total AS (
  SELECT date_bin(INTERVAL '1 minute', time) AS minute, labels['service'] AS service, sum(value) AS requests
  FROM metrics WHERE name = 'http_requests_total' AND time > now() - INTERVAL '1 hour'
  GROUP BY 1, 2
)
SELECT t.minute, t.service, coalesce(e.errors, 0) / nullif(t.requests, 0) AS ratio,
       rank() OVER (PARTITION BY t.minute ORDER BY coalesce(e.errors, 0) DESC) AS worst
FROM total t LEFT JOIN errs e ON e.minute = t.minute AND e.service = t.service
ORDER BY t.minute DESC, ratio DESC NULLS LAST
LIMIT 100
