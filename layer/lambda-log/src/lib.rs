//! # crossfed-lambda-log
//!
//! The one log setup of crossfed's Lambda binaries (the functions, through `crossfed-kit`,
//! and the `crossfed-extension` layer), honouring Lambda's logging controls:
//! `AWS_LAMBDA_LOG_LEVEL` (wins over `RUST_LOG`; default `info`) and `AWS_LAMBDA_LOG_FORMAT`
//! (`JSON`: one flat JSON object per line with `level`, `message` and the event's fields at
//! the top level; else text). Depends on `tracing-subscriber` only, so the extension does not
//! compile the functions' dependencies.

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
pub use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Lambda's application log level variable.
pub const LEVEL_ENV: &str = "AWS_LAMBDA_LOG_LEVEL";
/// Lambda's log format variable (`Text` or `JSON`).
pub const FORMAT_ENV: &str = "AWS_LAMBDA_LOG_FORMAT";
/// `tracing` target directives (`info`, `crossfed=debug,info`), used when
/// `AWS_LAMBDA_LOG_LEVEL` is unset. Span and field filters are not supported (no regex
/// engine in the Lambda binaries).
pub const RUST_LOG_ENV: &str = "RUST_LOG";

/// Looks a variable up: trimmed, `None` when unset or blank.
fn get(lookup: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    lookup(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn at(level: LevelFilter) -> Targets {
    Targets::new().with_default(level)
}

/// The filter and format the environment asks for, and a note when a value was not understood.
fn settings(lookup: &dyn Fn(&str) -> Option<String>) -> (Targets, bool, Option<String>) {
    let json = get(lookup, FORMAT_ENV).is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let (filter, note) = match (get(lookup, LEVEL_ENV), get(lookup, RUST_LOG_ENV)) {
        (Some(level), _) => match level.to_ascii_lowercase().as_str() {
            "fatal" | "error" => (at(LevelFilter::ERROR), None),
            "warn" => (at(LevelFilter::WARN), None),
            "info" => (at(LevelFilter::INFO), None),
            "debug" => (at(LevelFilter::DEBUG), None),
            "trace" => (at(LevelFilter::TRACE), None),
            _ => (
                at(LevelFilter::INFO),
                Some(format!(
                    "{LEVEL_ENV}={level:?} is not a level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL); logging at INFO"
                )),
            ),
        },
        (None, Some(directives)) => match directives.parse::<Targets>() {
            Ok(f) => (f, None),
            Err(e) => (
                at(LevelFilter::INFO),
                Some(format!(
                    "{RUST_LOG_ENV}={directives:?} is invalid ({e}; use target=level directives); logging at INFO"
                )),
            ),
        },
        (None, None) => (at(LevelFilter::INFO), None),
    };
    (filter, json, note)
}

/// The subscriber the variables found by `lookup` ask for, writing to `writer`.
pub fn subscriber<W>(
    lookup: impl Fn(&str) -> Option<String>,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    subscriber_and_note(&lookup, writer).0
}

fn subscriber_and_note<W>(
    lookup: &dyn Fn(&str) -> Option<String>,
    writer: W,
) -> (Box<dyn Subscriber + Send + Sync>, Option<String>)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, json, note) = settings(lookup);
    // The builder's own filter (INFO by default) lets everything through: `filter` decides.
    let fmt = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(writer);
    let subscriber: Box<dyn Subscriber + Send + Sync> = if json {
        Box::new(
            fmt.json()
                .flatten_event(true)
                .with_span_list(false)
                .finish()
                .with(filter),
        )
    } else {
        Box::new(fmt.finish().with(filter))
    };
    (subscriber, note)
}

/// Installs the process-wide subscriber (stdout) for the variables found by `lookup`; a
/// second call changes nothing. A level or filter that was not understood is logged as a
/// warning (logging then runs at INFO).
pub fn init(lookup: impl Fn(&str) -> Option<String>) {
    let (subscriber, note) = subscriber_and_note(&lookup, std::io::stdout);
    if tracing::subscriber::set_global_default(subscriber).is_ok()
        && let Some(note) = note
    {
        tracing::warn!("{note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    fn logged(vars: &[(&str, &str)]) -> String {
        let buffer = Buffer::default();
        let subscriber = subscriber(lookup(vars), buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(copied = 1u64, "debug line");
            tracing::info!(
                copied = 3u64,
                bytes = 42u64,
                destination = "gs://b/p/",
                "batch done"
            );
            tracing::error!("bad");
        });
        let out = buffer.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_lines_are_flat_with_numeric_fields() {
        let out = logged(&[(FORMAT_ENV, "JSON")]);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{out}"); // INFO by default: no debug line
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "batch done");
        assert_eq!(lines[0]["copied"], 3);
        assert_eq!(lines[0]["bytes"], 42);
        assert_eq!(lines[0]["destination"], "gs://b/p/");
        assert!(lines[0].get("fields").is_none(), "{out}");
        assert_eq!(lines[1]["level"], "ERROR");
    }

    #[test]
    fn lambda_level_wins_over_rust_log() {
        let out = logged(&[
            (FORMAT_ENV, "json"),
            (LEVEL_ENV, "ERROR"),
            ("RUST_LOG", "debug"),
        ]);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("\"bad\""), "{out}");
        let out = logged(&[(FORMAT_ENV, "JSON"), (LEVEL_ENV, "DEBUG")]);
        assert_eq!(out.lines().count(), 3, "{out}");
        let out = logged(&[(FORMAT_ENV, "JSON"), (LEVEL_ENV, "FATAL")]);
        assert_eq!(out.lines().count(), 1, "{out}");
        let out = logged(&[(FORMAT_ENV, "JSON"), ("RUST_LOG", "debug")]);
        assert_eq!(out.lines().count(), 3, "{out}");
        // Target directives: this crate's events at DEBUG, the rest at ERROR.
        let out = logged(&[("RUST_LOG", "crossfed_lambda_log=debug,error")]);
        assert_eq!(out.lines().count(), 3, "{out}");
        let out = logged(&[("RUST_LOG", "other=debug,error")]);
        assert_eq!(out.lines().count(), 1, "{out}");
    }

    #[test]
    fn text_is_the_default_format() {
        let out = logged(&[]);
        assert!(out.contains("INFO batch done copied=3 bytes=42"), "{out}");
        assert!(serde_json::from_str::<serde_json::Value>(out.lines().next().unwrap()).is_err());
    }

    #[test]
    fn unknown_values_fall_back_to_info_with_a_note() {
        let (_, _, note) = settings(&lookup(&[(LEVEL_ENV, "LOUD")]));
        assert!(note.unwrap().contains("AWS_LAMBDA_LOG_LEVEL=\"LOUD\""));
        let out = logged(&[(LEVEL_ENV, "LOUD")]);
        assert_eq!(out.lines().count(), 2, "{out}");
        let (_, _, note) = settings(&lookup(&[("RUST_LOG", "crossfed=loud")]));
        assert!(
            note.unwrap()
                .contains("RUST_LOG=\"crossfed=loud\" is invalid")
        );
        assert_eq!(logged(&[("RUST_LOG", "crossfed=loud")]).lines().count(), 2);
    }

    #[test]
    fn blank_values_count_as_unset() {
        // A blank AWS_LAMBDA_LOG_LEVEL leaves RUST_LOG in charge; a blank format is text.
        let out = logged(&[(LEVEL_ENV, "  "), ("RUST_LOG", "error"), (FORMAT_ENV, " ")]);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("ERROR bad"), "{out}");
    }
}
