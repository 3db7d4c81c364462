//! Reading settings from environment variables, collecting every problem so that init fails
//! once with a message listing all of them.

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::Arc;

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// A variable lookup: the process environment, or a map in tests. Cheap to clone.
#[derive(Clone)]
pub struct Env(Arc<Lookup>);

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env(..)")
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Env(Arc::new(|k| std::env::var(k).ok()))
    }

    /// Exactly these variables (tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Env(Arc::new(move |k| map.get(k).cloned()))
    }

    /// Any lookup function.
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Env(Arc::new(lookup))
    }

    /// The variable's value, trimmed; `None` when unset or blank.
    pub fn get(&self, key: &str) -> Option<String> {
        (self.0)(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// Whether the variable is `1` (an opt-in such as `CROSSFED_ALLOW_LOCAL_ENDPOINTS`).
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v == "1")
    }

    /// A reader that collects problems.
    pub fn reader(&self) -> EnvReader<'_> {
        EnvReader {
            env: self,
            problems: Vec::new(),
        }
    }
}

/// Reads variables and records every problem; [`EnvReader::finish`] reports them together.
///
/// Reading never stops at a problem: each method returns a placeholder (the default, an empty
/// string, `None`) so the rest is still checked.
#[derive(Debug)]
pub struct EnvReader<'a> {
    env: &'a Env,
    problems: Vec<String>,
}

impl EnvReader<'_> {
    /// The environment being read.
    pub fn env(&self) -> &Env {
        self.env
    }

    /// The variable's value, trimmed; `None` when unset or blank.
    pub fn optional(&self, key: &str) -> Option<String> {
        self.env.get(key)
    }

    /// A required variable; when unset records "`KEY` is not set: `how`".
    pub fn required(&mut self, key: &str, how: &str) -> String {
        self.optional(key).unwrap_or_else(|| {
            self.problem(format!("{key} is not set: {how}"));
            String::new()
        })
    }

    /// A whole number in `range`, `default` when unset.
    pub fn number<T>(&mut self, key: &str, default: T, range: RangeInclusive<T>) -> T
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(raw) = self.optional(key) else {
            return default;
        };
        match raw.parse::<T>() {
            Ok(n) if range.contains(&n) => n,
            _ => {
                self.problem(format!(
                    "{key} `{raw}` must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ));
                default
            }
        }
    }

    /// A required variable parsed by `parse`; unset records "`KEY` is not set: `how`", a parse
    /// error (saying what to fix) is recorded as it is.
    pub fn required_parse<T>(
        &mut self,
        key: &str,
        how: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if self.optional(key).is_none() {
            self.problem(format!("{key} is not set: {how}"));
        }
        self.parse(key, parse)
    }

    /// An optional variable parsed by `parse`, whose error (saying what to fix) is recorded.
    pub fn parse<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.optional(key)?;
        let parsed = parse(&raw);
        self.check(parsed)
    }

    /// Records the error of `result`, if any.
    pub fn check<T>(&mut self, result: Result<T, String>) -> Option<T> {
        result.map_err(|e| self.problem(e)).ok()
    }

    /// Records "`LOWER` must not exceed `UPPER`" when `lower > upper`.
    pub fn not_above<T: PartialOrd>(&mut self, lower: (&str, T), upper: (&str, T)) {
        if lower.1 > upper.1 {
            self.problem(format!("{} must not exceed {}", lower.0, upper.0));
        }
    }

    /// Records a problem.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// Whether no problem was recorded so far.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// `value` when nothing was wrong, else every problem recorded.
    pub fn finish<T>(self, value: T) -> Result<T, SettingsError> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(SettingsError(self.problems))
        }
    }
}

impl EnvReader<'_> {
    /// Like [`EnvReader::finish`] for a value built only when its required parts were read
    /// (`None` then means a problem was recorded).
    pub fn finish_some<T>(self, value: Option<T>) -> Result<T, SettingsError> {
        self.finish(value)?
            .ok_or_else(|| SettingsError(vec!["the configuration is incomplete".to_string()]))
    }
}

/// Every configuration problem found, each saying which variable to fix and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError(pub Vec<String>);

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.0.join("; "))
    }
}

impl std::error::Error for SettingsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_together() {
        let env = Env::from_pairs([("N", "70"), ("BLANK", "  "), ("M", " 7 ")]);
        let mut r = env.reader();
        assert_eq!(r.required("MISSING", "set it to x"), "");
        assert_eq!(r.required("BLANK", "set it to y"), "");
        assert_eq!(r.number("N", 4u32, 1..=64), 4);
        assert_eq!(r.number("M", 4u32, 1..=64), 7);
        assert_eq!(r.number("UNSET", 4u32, 1..=64), 4);
        assert_eq!(r.parse("M", |_| Err::<(), _>("M is odd".into())), None);
        assert_eq!(
            r.required_parse("MISSING2", "set it", |v| Ok(v.len())),
            None
        );
        assert_eq!(r.required_parse("M", "set it", |v| Ok(v.len())), Some(1));
        r.not_above(("LO", 2), ("HI", 1));
        r.not_above(("LO", 1), ("HI", 1));
        let e = r.finish(()).unwrap_err();
        assert_eq!(
            e.0,
            [
                "MISSING is not set: set it to x",
                "BLANK is not set: set it to y",
                "N `70` must be a whole number from 1 to 64",
                "M is odd",
                "MISSING2 is not set: set it",
                "LO must not exceed HI",
            ]
        );
        assert!(e.to_string().starts_with("invalid configuration: MISSING"));
    }

    #[test]
    fn clean_read_finishes_with_the_value() {
        let env = Env::from_pairs([("A", "a"), ("F", "1"), ("G", "yes")]);
        let mut r = env.reader();
        assert_eq!(r.required("A", ""), "a");
        assert!(r.is_ok());
        assert_eq!(r.finish(5).unwrap(), 5);
        assert_eq!(env.reader().finish_some(Some(1)), Ok(1));
        assert!(env.reader().finish_some(None::<u8>).is_err());
        assert!(env.flag("F") && !env.flag("G") && !env.flag("UNSET"));
    }
}
