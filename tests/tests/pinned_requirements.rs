//! What is deployed (the Python sample's wheels) and what builds it (cargo-lambda, Zig) is
//! installed from hash-pinned requirement files: every requirement is `name==version` with
//! PyPI hashes, and pip is told `--require-hashes`, so a changed file on the index fails the
//! build instead of shipping.

use crossfed_tests::workspace_root;

/// `(requirements file, Makefile that installs it)`.
const HASHED: [(&str, &str); 2] = [
    (
        "functions/python-list-buckets/requirements.txt",
        "functions/python-list-buckets/Makefile",
    ),
    ("tests/localcloud/requirements-lambda.txt", "Makefile"),
];

/// The requirements of a file, each with its hashes (continuation lines joined).
fn requirements(text: &str) -> Vec<(String, Vec<String>)> {
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            let pin = words.next().unwrap_or_default().to_string();
            let hashes = words
                .filter_map(|w| w.strip_prefix("--hash=sha256:"))
                .map(str::to_string)
                .collect();
            (pin, hashes)
        })
        .collect()
}

#[test]
fn deployed_and_build_requirements_are_hash_pinned() {
    for (file, makefile) in HASHED {
        let text = std::fs::read_to_string(workspace_root().join(file)).unwrap();
        let reqs = requirements(&text);
        assert!(!reqs.is_empty(), "{file}");
        for (pin, hashes) in &reqs {
            assert!(
                pin.contains("=="),
                "{file}: {pin} is not pinned to one version"
            );
            assert!(!hashes.is_empty(), "{file}: {pin} has no --hash");
            assert!(
                hashes
                    .iter()
                    .all(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())),
                "{file}: {pin}: {hashes:?}"
            );
        }
        let make = std::fs::read_to_string(workspace_root().join(makefile)).unwrap();
        let installs: Vec<&str> = make
            .lines()
            .filter(|l| l.contains("pip install") && l.contains(file.rsplit('/').next().unwrap()))
            .collect();
        assert!(!installs.is_empty(), "{makefile} installs {file}");
        assert!(
            installs.iter().all(|l| l.contains("--require-hashes")),
            "{makefile}: {installs:?}"
        );
    }
}

#[test]
fn continuation_lines_belong_to_their_requirement() {
    let reqs = requirements("# c\na==1 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\nb==2\n");
    assert_eq!(
        reqs,
        vec![
            ("a==1".to_string(), vec!["aa".to_string(), "bb".to_string()]),
            ("b==2".to_string(), vec![]),
        ]
    );
}
