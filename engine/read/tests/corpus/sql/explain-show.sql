EXPLAIN SELECT name, count(*), min(value), max(value), approx_percentile_cont(value, 0.99) FROM metrics GROUP BY name HAVING count(*) > 1
