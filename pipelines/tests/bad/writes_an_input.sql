-- error: 2:13: input stream
INSERT INTO metrics
SELECT * FROM metrics;
