//! OTLP/JSON decoded into the protobuf types, by hand.
//!
//! The serde derive of `opentelemetry-proto` (`with-serde`) is not used: it has dropped data
//! points and values without an error (opentelemetry-rust issues #3527, #3328). This decoder
//! follows the OTLP/JSON rules of the specification: lowerCamelCase field names (the proto
//! names in snake_case are read too, as the protobuf JSON mapping allows), 64-bit integers as
//! numbers or decimal strings, enums as integers (their names are read too), `traceId` /
//! `spanId` as hex, `bytesValue` as base64, doubles as numbers or `"NaN"` / `"Infinity"` /
//! `"-Infinity"`. Unknown fields are ignored, as the specification requires of receivers; a
//! known field of the wrong type rejects the whole body, naming its path.

use crate::error::DecodeError;
use crate::sources::validate::parse_json;
use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyV;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Num;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One JSON object and its path in the document (`resourceMetrics[0].scopeMetrics[1]`).
struct Obj<'a> {
    m: &'a Map<String, Value>,
    path: String,
}

/// `fooBar` → `foo_bar`, the proto field name.
fn snake(camel: &str) -> String {
    let mut s = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

impl<'a> Obj<'a> {
    fn root(v: &'a Value) -> Result<Obj<'a>, DecodeError> {
        match v {
            Value::Object(m) => Ok(Obj {
                m,
                path: String::new(),
            }),
            other => Err(DecodeError::WrongType {
                at: "body".into(),
                field: "(body)".into(),
                expected: "an object",
                got: type_name(other),
            }),
        }
    }

    fn field_path(&self, f: &str) -> String {
        if self.path.is_empty() {
            f.to_string()
        } else {
            format!("{}.{f}", self.path)
        }
    }

    /// The field by its JSON name or its proto name; null counts as absent.
    fn get(&self, f: &str) -> Option<&'a Value> {
        let v = self.m.get(f).or_else(|| {
            if f.bytes().any(|b| b.is_ascii_uppercase()) {
                self.m.get(&snake(f))
            } else {
                None
            }
        });
        v.filter(|v| !v.is_null())
    }

    fn wrong(&self, f: &str, expected: &'static str, v: &Value) -> DecodeError {
        DecodeError::WrongType {
            at: if self.path.is_empty() {
                "body".into()
            } else {
                self.path.clone()
            },
            field: f.to_string(),
            expected,
            got: type_name(v),
        }
    }

    fn invalid(&self, f: &str, message: String) -> DecodeError {
        DecodeError::InvalidValue {
            at: if self.path.is_empty() {
                "body".into()
            } else {
                self.path.clone()
            },
            field: f.to_string(),
            message,
        }
    }

    fn obj(&self, f: &str) -> Result<Option<Obj<'a>>, DecodeError> {
        match self.get(f) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Obj {
                m,
                path: self.field_path(f),
            })),
            Some(v) => Err(self.wrong(f, "an object", v)),
        }
    }

    fn arr(&self, f: &str) -> Result<&'a [Value], DecodeError> {
        match self.get(f) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(self.wrong(f, "an array", v)),
        }
    }

    /// The objects of an array field.
    fn objs(&self, f: &str) -> Result<Vec<Obj<'a>>, DecodeError> {
        self.arr(f)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Object(m) => Ok(Obj {
                    m,
                    path: format!("{}[{i}]", self.field_path(f)),
                }),
                other => Err(self.wrong(&format!("{f}[{i}]"), "an object", other)),
            })
            .collect()
    }

    fn string(&self, f: &str) -> Result<String, DecodeError> {
        match self.get(f) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.wrong(f, "a string", v)),
        }
    }

    fn boolean(&self, f: &str) -> Result<bool, DecodeError> {
        match self.get(f) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.wrong(f, "a boolean", v)),
        }
    }

    fn int_of(&self, f: &str, v: &'a Value) -> Result<i128, DecodeError> {
        let bad = || {
            self.invalid(
                f,
                format!("must be an integer (a number or a decimal string), got {v}"),
            )
        };
        match v {
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .ok_or_else(bad),
            Value::String(s) => s.trim().parse::<i128>().map_err(|_| bad()),
            other => Err(self.wrong(f, "an integer (number or decimal string)", other)),
        }
    }

    fn u64_of(&self, f: &str, v: &'a Value) -> Result<u64, DecodeError> {
        let i = self.int_of(f, v)?;
        u64::try_from(i).map_err(|_| self.invalid(f, format!("{i} is out of range for uint64")))
    }

    fn u64(&self, f: &str) -> Result<u64, DecodeError> {
        self.get(f).map_or(Ok(0), |v| self.u64_of(f, v))
    }

    fn i64(&self, f: &str) -> Result<i64, DecodeError> {
        match self.get(f) {
            None => Ok(0),
            Some(v) => {
                let i = self.int_of(f, v)?;
                i64::try_from(i)
                    .map_err(|_| self.invalid(f, format!("{i} is out of range for int64")))
            }
        }
    }

    fn i32(&self, f: &str) -> Result<i32, DecodeError> {
        let i = self.i64(f)?;
        i32::try_from(i).map_err(|_| self.invalid(f, format!("{i} is out of range for int32")))
    }

    fn f64_of(&self, f: &str, v: &Value) -> Result<f64, DecodeError> {
        match v {
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| self.invalid(f, format!("{n} is not a double"))),
            Value::String(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" | "+Infinity" | "Inf" | "+Inf" => Ok(f64::INFINITY),
                "-Infinity" | "-Inf" => Ok(f64::NEG_INFINITY),
                other => other.trim().parse::<f64>().map_err(|_| {
                    self.invalid(
                        f,
                        format!(
                            "{other:?} is not a number (or \"NaN\", \"Infinity\", \"-Infinity\")"
                        ),
                    )
                }),
            },
            other => Err(self.wrong(f, "a number", other)),
        }
    }

    fn opt_f64(&self, f: &str) -> Result<Option<f64>, DecodeError> {
        self.get(f).map(|v| self.f64_of(f, v)).transpose()
    }

    fn f64(&self, f: &str) -> Result<f64, DecodeError> {
        Ok(self.opt_f64(f)?.unwrap_or(0.0))
    }

    /// An enum: its integer, or its name.
    fn enumeration(&self, f: &str, by_name: fn(&str) -> Option<i32>) -> Result<i32, DecodeError> {
        match self.get(f) {
            None => Ok(0),
            Some(Value::String(s)) if s.parse::<i64>().is_err() => by_name(s)
                .ok_or_else(|| self.invalid(f, format!("{s:?} is not a value of this enum"))),
            Some(_) => self.i32(f),
        }
    }

    /// Hex bytes (`traceId`, `spanId`).
    fn hex(&self, f: &str) -> Result<Vec<u8>, DecodeError> {
        let s = self.string(f)?;
        hex::decode(&s).map_err(|e| self.invalid(f, format!("is not hex: {e}")))
    }

    fn u64s(&self, f: &str) -> Result<Vec<u64>, DecodeError> {
        self.arr(f)?.iter().map(|v| self.u64_of(f, v)).collect()
    }

    fn f64s(&self, f: &str) -> Result<Vec<f64>, DecodeError> {
        self.arr(f)?.iter().map(|v| self.f64_of(f, v)).collect()
    }
}

fn any_value(o: &Obj<'_>) -> Result<AnyValue, DecodeError> {
    let v = if let Some(v) = o.get("stringValue") {
        match v {
            Value::String(s) => Some(AnyV::StringValue(s.clone())),
            other => return Err(o.wrong("stringValue", "a string", other)),
        }
    } else if o.get("boolValue").is_some() {
        Some(AnyV::BoolValue(o.boolean("boolValue")?))
    } else if o.get("intValue").is_some() {
        Some(AnyV::IntValue(o.i64("intValue")?))
    } else if o.get("doubleValue").is_some() {
        Some(AnyV::DoubleValue(o.f64("doubleValue")?))
    } else if let Some(a) = o.obj("arrayValue")? {
        Some(AnyV::ArrayValue(ArrayValue {
            values: a
                .objs("values")?
                .iter()
                .map(any_value)
                .collect::<Result<_, _>>()?,
        }))
    } else if let Some(kv) = o.obj("kvlistValue")? {
        Some(AnyV::KvlistValue(KeyValueList {
            values: key_values(&kv, "values")?,
        }))
    } else if o.get("bytesValue").is_some() {
        let s = o.string("bytesValue")?;
        let b = base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s.as_bytes()))
            .map_err(|e| o.invalid("bytesValue", format!("is not base64: {e}")))?;
        Some(AnyV::BytesValue(b))
    } else {
        None
    };
    Ok(AnyValue { value: v })
}

fn key_values(o: &Obj<'_>, f: &str) -> Result<Vec<KeyValue>, DecodeError> {
    o.objs(f)?
        .iter()
        .map(|kv| {
            Ok(KeyValue {
                key: kv.string("key")?,
                value: kv.obj("value")?.map(|v| any_value(&v)).transpose()?,
                key_strindex: 0,
            })
        })
        .collect()
}

fn resource(o: &Obj<'_>) -> Result<Option<Resource>, DecodeError> {
    o.obj("resource")?
        .map(|r| {
            Ok(Resource {
                attributes: key_values(&r, "attributes")?,
                dropped_attributes_count: u32::try_from(r.u64("droppedAttributesCount")?)
                    .unwrap_or(u32::MAX),
                entity_refs: Vec::new(),
            })
        })
        .transpose()
}

fn scope(o: &Obj<'_>) -> Result<Option<InstrumentationScope>, DecodeError> {
    o.obj("scope")?
        .map(|s| {
            Ok(InstrumentationScope {
                name: s.string("name")?,
                version: s.string("version")?,
                attributes: key_values(&s, "attributes")?,
                dropped_attributes_count: 0,
            })
        })
        .transpose()
}

fn flags(o: &Obj<'_>) -> Result<u32, DecodeError> {
    let f = o.u64("flags")?;
    u32::try_from(f).map_err(|_| o.invalid("flags", format!("{f} is out of range for uint32")))
}

fn temporality(o: &Obj<'_>) -> Result<i32, DecodeError> {
    o.enumeration("aggregationTemporality", |s| {
        AggregationTemporality::from_str_name(s).map(|t| t as i32)
    })
}

fn number_points(o: &Obj<'_>) -> Result<Vec<NumberDataPoint>, DecodeError> {
    o.objs("dataPoints")?
        .iter()
        .map(|p| {
            let value = if p.get("asDouble").is_some() {
                Some(Num::AsDouble(p.f64("asDouble")?))
            } else if p.get("asInt").is_some() {
                Some(Num::AsInt(p.i64("asInt")?))
            } else {
                None
            };
            Ok(NumberDataPoint {
                attributes: key_values(p, "attributes")?,
                start_time_unix_nano: p.u64("startTimeUnixNano")?,
                time_unix_nano: p.u64("timeUnixNano")?,
                exemplars: Vec::new(),
                flags: flags(p)?,
                value,
            })
        })
        .collect()
}

fn buckets(o: &Obj<'_>, f: &str) -> Result<Option<Buckets>, DecodeError> {
    o.obj(f)?
        .map(|b| {
            Ok(Buckets {
                offset: b.i32("offset")?,
                bucket_counts: b.u64s("bucketCounts")?,
            })
        })
        .transpose()
}

fn metric(o: &Obj<'_>) -> Result<Metric, DecodeError> {
    let data = if let Some(g) = o.obj("gauge")? {
        Some(Data::Gauge(Gauge {
            data_points: number_points(&g)?,
        }))
    } else if let Some(s) = o.obj("sum")? {
        Some(Data::Sum(Sum {
            data_points: number_points(&s)?,
            aggregation_temporality: temporality(&s)?,
            is_monotonic: s.boolean("isMonotonic")?,
        }))
    } else if let Some(h) = o.obj("histogram")? {
        Some(Data::Histogram(Histogram {
            data_points: h
                .objs("dataPoints")?
                .iter()
                .map(|p| {
                    Ok(HistogramDataPoint {
                        attributes: key_values(p, "attributes")?,
                        start_time_unix_nano: p.u64("startTimeUnixNano")?,
                        time_unix_nano: p.u64("timeUnixNano")?,
                        count: p.u64("count")?,
                        sum: p.opt_f64("sum")?,
                        bucket_counts: p.u64s("bucketCounts")?,
                        explicit_bounds: p.f64s("explicitBounds")?,
                        exemplars: Vec::new(),
                        flags: flags(p)?,
                        min: p.opt_f64("min")?,
                        max: p.opt_f64("max")?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
            aggregation_temporality: temporality(&h)?,
        }))
    } else if let Some(h) = o.obj("exponentialHistogram")? {
        Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: h
                .objs("dataPoints")?
                .iter()
                .map(|p| {
                    Ok(ExponentialHistogramDataPoint {
                        attributes: key_values(p, "attributes")?,
                        start_time_unix_nano: p.u64("startTimeUnixNano")?,
                        time_unix_nano: p.u64("timeUnixNano")?,
                        count: p.u64("count")?,
                        sum: p.opt_f64("sum")?,
                        scale: p.i32("scale")?,
                        zero_count: p.u64("zeroCount")?,
                        positive: buckets(p, "positive")?,
                        negative: buckets(p, "negative")?,
                        flags: flags(p)?,
                        exemplars: Vec::new(),
                        min: p.opt_f64("min")?,
                        max: p.opt_f64("max")?,
                        zero_threshold: p.f64("zeroThreshold")?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
            aggregation_temporality: temporality(&h)?,
        }))
    } else if let Some(s) = o.obj("summary")? {
        Some(Data::Summary(Summary {
            data_points: s
                .objs("dataPoints")?
                .iter()
                .map(|p| {
                    Ok(SummaryDataPoint {
                        attributes: key_values(p, "attributes")?,
                        start_time_unix_nano: p.u64("startTimeUnixNano")?,
                        time_unix_nano: p.u64("timeUnixNano")?,
                        count: p.u64("count")?,
                        sum: p.f64("sum")?,
                        quantile_values: p
                            .objs("quantileValues")?
                            .iter()
                            .map(|q| {
                                Ok(ValueAtQuantile {
                                    quantile: q.f64("quantile")?,
                                    value: q.f64("value")?,
                                })
                            })
                            .collect::<Result<_, DecodeError>>()?,
                        flags: flags(p)?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
        }))
    } else {
        None
    };
    Ok(Metric {
        name: o.string("name")?,
        description: o.string("description")?,
        unit: o.string("unit")?,
        metadata: key_values(o, "metadata")?,
        data,
    })
}

fn parse(raw: &[u8]) -> Result<Value, DecodeError> {
    parse_json(raw).map_err(|e| DecodeError::json(&e, 0))
}

/// An `ExportMetricsServiceRequest` from OTLP/JSON.
///
/// # Errors
/// [`DecodeError`] naming the path of the first field that cannot be read.
pub fn metrics_request(raw: &[u8]) -> Result<ExportMetricsServiceRequest, DecodeError> {
    let v = parse(raw)?;
    let root = Obj::root(&v)?;
    let resource_metrics = root
        .objs("resourceMetrics")?
        .iter()
        .map(|rm| {
            Ok(ResourceMetrics {
                resource: resource(rm)?,
                scope_metrics: rm
                    .objs("scopeMetrics")?
                    .iter()
                    .map(|sm| {
                        Ok(ScopeMetrics {
                            scope: scope(sm)?,
                            metrics: sm.objs("metrics")?.iter().map(metric).collect::<Result<
                                _,
                                DecodeError,
                            >>(
                            )?,
                            schema_url: sm.string("schemaUrl")?,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?,
                schema_url: rm.string("schemaUrl")?,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(ExportMetricsServiceRequest { resource_metrics })
}

fn log_record(o: &Obj<'_>) -> Result<LogRecord, DecodeError> {
    Ok(LogRecord {
        time_unix_nano: o.u64("timeUnixNano")?,
        observed_time_unix_nano: o.u64("observedTimeUnixNano")?,
        severity_number: o.enumeration("severityNumber", |s| {
            opentelemetry_proto::tonic::logs::v1::SeverityNumber::from_str_name(s).map(|n| n as i32)
        })?,
        severity_text: o.string("severityText")?,
        body: o.obj("body")?.map(|b| any_value(&b)).transpose()?,
        attributes: key_values(o, "attributes")?,
        dropped_attributes_count: u32::try_from(o.u64("droppedAttributesCount")?)
            .unwrap_or(u32::MAX),
        flags: flags(o)?,
        trace_id: o.hex("traceId")?,
        span_id: o.hex("spanId")?,
        event_name: o.string("eventName")?,
    })
}

/// An `ExportLogsServiceRequest` from OTLP/JSON.
///
/// # Errors
/// [`DecodeError`] naming the path of the first field that cannot be read.
pub fn logs_request(raw: &[u8]) -> Result<ExportLogsServiceRequest, DecodeError> {
    let v = parse(raw)?;
    let root = Obj::root(&v)?;
    let resource_logs = root
        .objs("resourceLogs")?
        .iter()
        .map(|rl| {
            Ok(ResourceLogs {
                resource: resource(rl)?,
                scope_logs: rl
                    .objs("scopeLogs")?
                    .iter()
                    .map(|sl| {
                        Ok(ScopeLogs {
                            scope: scope(sl)?,
                            log_records: sl
                                .objs("logRecords")?
                                .iter()
                                .map(log_record)
                                .collect::<Result<_, DecodeError>>()?,
                            schema_url: sl.string("schemaUrl")?,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?,
                schema_url: rl.string("schemaUrl")?,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(ExportLogsServiceRequest { resource_logs })
}
