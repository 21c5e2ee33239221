//! `tumble` in a batch query over real event batches: rows are grouped by epoch-aligned windows.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_schemas::{Kind, MetricBatchBuilder, schema_for};
use datafusion::arrow::array::{AsArray, Int64Array};
use datafusion::arrow::datatypes::TimestampMillisecondType;
use datafusion::datasource::MemTable;
use std::sync::Arc;

#[tokio::test]
async fn tumble_groups_rows_by_window() {
    let mut b = MetricBatchBuilder::new();
    // 0..179 s, one sample a second, plus one sample before the epoch.
    for s in 0..180i64 {
        b.push(s * 1000, "up", [("host", "a")], 1.0);
    }
    b.push(-1, "up", [("host", "a")], 1.0);
    let batch = b.finish().unwrap();
    let ctx = aiops_sql::catalog::session().unwrap();
    ctx.deregister_table("metrics").unwrap();
    let table = MemTable::try_new(schema_for(Kind::Metrics), vec![vec![batch]]).unwrap();
    ctx.register_table("metrics", Arc::new(table)).unwrap();
    let df = ctx
        .sql(
            "SELECT tumble(time, INTERVAL '1 minute') AS w, count(*) AS n, labels['host'] AS host \
             FROM metrics GROUP BY 1, 3 ORDER BY 1",
        )
        .await
        .unwrap();
    let out = df.collect().await.unwrap();
    let mut rows = Vec::new();
    for b in &out {
        let w = b.column(0).as_primitive::<TimestampMillisecondType>();
        let n = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..b.num_rows() {
            rows.push((w.value(i), n.value(i)));
        }
    }
    assert_eq!(
        rows,
        vec![(-60_000, 1), (0, 60), (60_000, 60), (120_000, 60)]
    );
}
