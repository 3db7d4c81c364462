//! Every file in `events/` belongs to a function (by its name) and is JSON; each function's
//! `tests/sample_events.rs` feeds that function's files to its binary.

use crossfed_tests::lambda::sample_events::{FUNCTIONS, all_files, for_function, function_of};

#[test]
fn every_sample_event_belongs_to_a_function() {
    let files = all_files();
    assert!(!files.is_empty());
    let orphans: Vec<&String> = files.iter().filter(|f| function_of(f).is_none()).collect();
    assert!(
        orphans.is_empty(),
        "events/ files {orphans:?} match no function: name them <function>[-what].json, \
         with <function> one of {FUNCTIONS:?}"
    );
    for function in FUNCTIONS {
        assert!(
            !for_function(function).is_empty(),
            "no sample event for {function}"
        );
    }
}

#[test]
fn names_map_to_functions_by_prefix() {
    assert_eq!(function_of("gcs-sync-sqs-put.json"), Some("gcs-sync"));
    assert_eq!(function_of("list-buckets.json"), Some("list-buckets"));
    assert_eq!(function_of("gcs-syncer.json"), None);
    assert_eq!(function_of("gcs-sync-put.txt"), None);
}
