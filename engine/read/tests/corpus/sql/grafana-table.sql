SELECT window_start AS "time", host, avg_cpu FROM cpu_1m WHERE window_start BETWEEN '2026-12-02T08:00:00Z' AND '2026-12-02T08:04:59.999Z' ORDER BY 1
