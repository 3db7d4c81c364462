//! CloudWatch metrics in Embedded Metric Format (EMF): one JSON line on stdout per batch, which
//! CloudWatch Logs turns into metrics, so dashboards and alarms need no log parsing.
//!
//! Namespace `crossfed`, one dimension `Function` (the function's name in this project).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every crossfed metric.
pub const NAMESPACE: &str = "crossfed";

/// A CloudWatch unit the functions use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// EMF's limit of values in one metric's array.
const MAX_VALUES_PER_RECORD: usize = 100;

/// One EMF record: a set of values for one function, written with [`Metrics::emit`].
#[derive(Clone, Debug)]
pub struct Metrics {
    function: String,
    values: Vec<(&'static str, Vec<f64>, Unit)>,
}

impl Metrics {
    /// An empty record for `function` (the `Function` dimension, e.g. `gcs-sync`).
    pub fn new(function: impl Into<String>) -> Self {
        Metrics {
            function: function.into(),
            values: Vec::new(),
        }
    }

    /// Adds a value (a metric named `name`).
    pub fn with(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        self.values.push((name, vec![value], unit));
        self
    }

    /// Adds several values of one metric (e.g. one latency per object), so CloudWatch keeps
    /// their distribution (percentiles). Nothing is added when `values` is empty.
    pub fn values(mut self, name: &'static str, values: Vec<f64>, unit: Unit) -> Self {
        if !values.is_empty() {
            self.values.push((name, values, unit));
        }
        self
    }

    /// Adds a count.
    pub fn count(self, name: &'static str, value: u64) -> Self {
        self.with(name, value as f64, Unit::Count)
    }

    /// The EMF JSON records, stamped `at`: one, or more when a metric has more values than
    /// EMF takes in one array (100); the extra records carry only the remaining values.
    pub fn to_records(&self, at: SystemTime) -> Vec<Value> {
        let timestamp = at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let chunks = self
            .values
            .iter()
            .map(|(_, v, _)| v.len().div_ceil(MAX_VALUES_PER_RECORD))
            .max()
            .unwrap_or(0);
        (0..chunks)
            .map(|chunk| {
                let mut definitions = Vec::new();
                let mut record = Map::new();
                for (name, values, unit) in &self.values {
                    let start = chunk * MAX_VALUES_PER_RECORD;
                    let part = &values[start.min(values.len())..];
                    let part = &part[..part.len().min(MAX_VALUES_PER_RECORD)];
                    let value = match part {
                        [] => continue,
                        [one] if values.len() == 1 => json!(one),
                        many => json!(many),
                    };
                    definitions.push(json!({"Name": name, "Unit": unit.as_str()}));
                    record.insert((*name).into(), value);
                }
                record.insert(
                    "_aws".into(),
                    json!({
                        "Timestamp": timestamp,
                        "CloudWatchMetrics": [{
                            "Namespace": NAMESPACE,
                            "Dimensions": [["Function"]],
                            "Metrics": definitions,
                        }],
                    }),
                );
                record.insert("Function".into(), Value::String(self.function.clone()));
                Value::Object(record)
            })
            .collect()
    }

    /// The first (usually the only) EMF record, stamped `at`.
    pub fn to_json(&self, at: SystemTime) -> Value {
        self.to_records(at).into_iter().next().unwrap_or_default()
    }

    /// Writes the records, one line each, on stdout (nothing when they hold no value).
    pub fn emit(&self) {
        for record in self.to_records(SystemTime::now()) {
            println!("{record}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn emf_shape() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let m = Metrics::new("gcs-sync")
            .count("ObjectsCopied", 3)
            .with("BytesCopied", 42.0, Unit::Bytes)
            .with("ReplicationLag", 1500.0, Unit::Milliseconds);
        let v = m.to_json(at);
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_123u64);
        let def = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(def["Namespace"], "crossfed");
        assert_eq!(def["Dimensions"], json!([["Function"]]));
        assert_eq!(
            def["Metrics"],
            json!([
                {"Name": "ObjectsCopied", "Unit": "Count"},
                {"Name": "BytesCopied", "Unit": "Bytes"},
                {"Name": "ReplicationLag", "Unit": "Milliseconds"},
            ])
        );
        assert_eq!(v["Function"], "gcs-sync");
        assert_eq!(v["ObjectsCopied"], 3.0);
        assert_eq!(v["BytesCopied"], 42.0);
        assert_eq!(v["ReplicationLag"], 1500.0);
    }

    #[test]
    fn many_values_are_an_array_split_at_emf_limit() {
        let at = UNIX_EPOCH;
        let lags: Vec<f64> = (0..250).map(f64::from).collect();
        let m = Metrics::new("gcs-sync")
            .count("ObjectsCopied", 250)
            .values("ReplicationLag", lags.clone(), Unit::Milliseconds)
            .values("Nothing", Vec::new(), Unit::Count);
        let records = m.to_records(at);
        assert_eq!(records.len(), 3);
        assert_eq!(records[0]["ObjectsCopied"], 250.0);
        let mut seen = Vec::new();
        for r in &records {
            let names: Vec<&str> = r["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["Name"].as_str().unwrap())
                .collect();
            assert!(!names.contains(&"Nothing"));
            assert!(names.contains(&"ReplicationLag"));
            let chunk = r["ReplicationLag"].as_array().unwrap();
            assert!(chunk.len() <= 100);
            seen.extend(chunk.iter().map(|v| v.as_f64().unwrap()));
        }
        assert_eq!(seen, lags);
        assert!(records[1].get("ObjectsCopied").is_none());
        assert!(Metrics::new("x").to_records(at).is_empty());
    }
}
