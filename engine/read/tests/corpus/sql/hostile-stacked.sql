SELECT 1; DROP TABLE metrics; SET datafusion.execution.batch_size = 1
