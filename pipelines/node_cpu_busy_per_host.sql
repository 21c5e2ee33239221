-- Busy CPU per host per minute: the per-CPU, per-mode seconds of node_cpu_per_host (stream
-- node_cpu_1m) summed over CPUs and the non-idle modes. It reads another pipeline's output, so
-- each counter's increase is taken per series first (resets handled) and only then summed.
-- `revision = 0` takes each upstream window once; late revisions of it are not added twice.
INSERT INTO node_cpu_busy_1m
SELECT
  tumble(window_start, INTERVAL '1 minute') AS window_start,
  host,
  sum(seconds) AS busy_seconds,
  sum(utilization) AS busy_cpus
FROM node_cpu_1m
WHERE mode <> 'idle' AND revision = 0
GROUP BY tumble(window_start, INTERVAL '1 minute'), host;
