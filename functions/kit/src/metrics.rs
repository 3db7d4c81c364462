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

/// One EMF record: a set of values for one function, written with [`Metrics::emit`].
#[derive(Clone, Debug)]
pub struct Metrics {
    function: String,
    values: Vec<(&'static str, f64, Unit)>,
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
        self.values.push((name, value, unit));
        self
    }

    /// Adds a count.
    pub fn count(self, name: &'static str, value: u64) -> Self {
        self.with(name, value as f64, Unit::Count)
    }

    /// The EMF JSON object, stamped `at`.
    pub fn to_json(&self, at: SystemTime) -> Value {
        let timestamp = at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let definitions: Vec<Value> = self
            .values
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut record = Map::new();
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
        for (name, value, _) in &self.values {
            record.insert((*name).into(), json!(value));
        }
        Value::Object(record)
    }

    /// Writes the record as one line on stdout (nothing when it holds no value).
    pub fn emit(&self) {
        if !self.values.is_empty() {
            println!("{}", self.to_json(SystemTime::now()));
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
}
