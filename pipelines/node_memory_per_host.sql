-- Available memory per host per minute, from node_exporter's node_memory_MemAvailable_bytes.
INSERT INTO node_memory_1m
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  labels['instance'] AS host,
  min(value) AS available_min_bytes,
  avg(value) AS available_avg_bytes
FROM metrics
WHERE name = 'node_memory_MemAvailable_bytes'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance'];
