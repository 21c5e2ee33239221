-- error: 4:19: Expected
INSERT INTO out
SELECT name
FROM metrics WHERE;
