-- error: 3:1: no columns
INSERT INTO out
SELECT FROM metrics;
