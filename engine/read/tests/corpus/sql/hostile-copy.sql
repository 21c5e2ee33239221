COPY (SELECT * FROM metrics) TO '/tmp/aiops-fuzz-should-not-exist.csv' STORED AS CSV
