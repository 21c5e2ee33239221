-- Free disk space per host and mount point per minute, from node_exporter's
-- node_filesystem_avail_bytes: the lowest and the latest-minute average.
INSERT INTO node_disk_1m
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  labels['instance'] AS host,
  labels['mountpoint'] AS mountpoint,
  min(value) AS avail_min_bytes,
  max(value) AS avail_max_bytes,
  avg(value) AS avail_avg_bytes
FROM metrics
WHERE name = 'node_filesystem_avail_bytes'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance'], labels['mountpoint'];
