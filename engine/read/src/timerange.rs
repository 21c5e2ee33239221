//! The event-time range a query's filters allow, so a scan reads only the log messages, archive
//! files and row groups that can hold matching rows. The filters are still applied to every row
//! afterwards (pushdown is inexact), so a range that is too wide is only slower, never wrong.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};

/// An inclusive range of Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Smallest time a row may have.
    pub from_ms: i64,
    /// Largest time a row may have.
    pub to_ms: i64,
}

impl TimeRange {
    /// Every time.
    pub const ALL: TimeRange = TimeRange {
        from_ms: i64::MIN,
        to_ms: i64::MAX,
    };

    /// True when `[min, max]` overlaps this range.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        min <= self.to_ms && max >= self.from_ms
    }

    /// True when `t` is in the range.
    pub fn contains(&self, t: i64) -> bool {
        t >= self.from_ms && t <= self.to_ms
    }

    fn narrow(&mut self, other: TimeRange) {
        self.from_ms = self.from_ms.max(other.from_ms);
        self.to_ms = self.to_ms.min(other.to_ms);
    }
}

/// The range that the conjunction of `filters` allows for column `column`.
pub fn from_filters(filters: &[Expr], column: &str) -> TimeRange {
    let mut r = TimeRange::ALL;
    for f in filters {
        r.narrow(of_expr(f, column));
    }
    r
}

fn of_expr(e: &Expr, column: &str) -> TimeRange {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => {
                let mut r = of_expr(left, column);
                r.narrow(of_expr(right, column));
                r
            }
            Operator::Or => {
                let (a, b) = (of_expr(left, column), of_expr(right, column));
                TimeRange {
                    from_ms: a.from_ms.min(b.from_ms),
                    to_ms: a.to_ms.max(b.to_ms),
                }
            }
            _ => comparison(left, *op, right, column),
        },
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_column(expr, column) => match (millis(low), millis(high)) {
            (Some(lo), Some(hi)) => TimeRange {
                from_ms: lo,
                to_ms: hi,
            },
            (Some(lo), None) => TimeRange {
                from_ms: lo,
                to_ms: i64::MAX,
            },
            (None, Some(hi)) => TimeRange {
                from_ms: i64::MIN,
                to_ms: hi,
            },
            (None, None) => TimeRange::ALL,
        },
        _ => TimeRange::ALL,
    }
}

fn comparison(left: &Expr, op: Operator, right: &Expr, column: &str) -> TimeRange {
    let (op, v) = if is_column(left, column) {
        (op, millis(right))
    } else if is_column(right, column) {
        let Some(op) = op.swap() else {
            return TimeRange::ALL;
        };
        (op, millis(left))
    } else {
        return TimeRange::ALL;
    };
    let Some(v) = v else {
        return TimeRange::ALL;
    };
    match op {
        // Sub-millisecond literals were truncated towards −∞; `>` and `>=` then keep one extra
        // millisecond, which the row filter removes.
        Operator::Gt | Operator::GtEq => TimeRange {
            from_ms: v,
            to_ms: i64::MAX,
        },
        Operator::Lt | Operator::LtEq => TimeRange {
            from_ms: i64::MIN,
            to_ms: v.saturating_add(1),
        },
        Operator::Eq => TimeRange {
            from_ms: v,
            to_ms: v.saturating_add(1),
        },
        _ => TimeRange::ALL,
    }
}

fn is_column(e: &Expr, column: &str) -> bool {
    match e {
        Expr::Column(c) => c.name == column,
        Expr::Cast(c) => is_column(&c.expr, column),
        Expr::TryCast(c) => is_column(&c.expr, column),
        _ => false,
    }
}

/// A literal (after the planner's constant folding and coercion) as Unix ms.
fn millis(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => scalar_millis(v),
        Expr::Cast(c) => millis(&c.expr),
        _ => None,
    }
}

fn scalar_millis(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampSecond(Some(s), _) => s.checked_mul(1000),
        ScalarValue::TimestampMillisecond(Some(ms), _) => Some(*ms),
        ScalarValue::TimestampMicrosecond(Some(us), _) => Some(us.div_euclid(1000)),
        ScalarValue::TimestampNanosecond(Some(ns), _) => Some(ns.div_euclid(1_000_000)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn ts(ms: i64) -> Expr {
        Expr::Literal(
            ScalarValue::TimestampMillisecond(Some(ms), Some("+00:00".into())),
            None,
        )
    }

    #[test]
    fn between_and_comparisons_narrow() {
        let f = [col("time").between(ts(1000), ts(5000))];
        assert_eq!(
            from_filters(&f, "time"),
            TimeRange {
                from_ms: 1000,
                to_ms: 5000
            }
        );
        let f = [col("time").gt_eq(ts(2000)), ts(4000).gt(col("time"))];
        assert_eq!(
            from_filters(&f, "time"),
            TimeRange {
                from_ms: 2000,
                to_ms: 4001
            }
        );
    }

    #[test]
    fn other_columns_and_or_keep_wide_ranges() {
        assert_eq!(
            from_filters(&[col("name").eq(lit("x"))], "time"),
            TimeRange::ALL
        );
        let f = [col("time").lt(ts(10)).or(col("name").eq(lit("x")))];
        assert_eq!(from_filters(&f, "time"), TimeRange::ALL);
    }
}
