#!/usr/bin/env python3
"""Adds every PyPI file hash of each pinned `name==version` to a requirements file, so that
`pip install --require-hashes -r FILE` installs exactly what PyPI published for that version
on any platform (x86_64 and arm64 wheels, sdists).

Usage: deploy/hash_requirements.py FILE...   (rewrites each FILE in place; comments kept)
Reads the simple index (PEP 503) at $PIP_INDEX_URL or https://pypi.org/simple/.
"""

import html.parser
import os
import re
import sys
import urllib.request

INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.files = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href") if tag == "a" else None
        if href and "#sha256=" in href:
            url, digest = href.split("#sha256=", 1)
            self.files.append((url.rsplit("/", 1)[-1], digest))


def release_of(filename: str) -> tuple[str, str] | None:
    """(normalized name, version) of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        parts = filename.split("-")
        return (normalize(parts[0]), parts[1].lower()) if len(parts) >= 5 else None
    for ext in (".tar.gz", ".zip", ".tar.bz2"):
        if filename.endswith(ext):
            stem, _, version = filename[: -len(ext)].rpartition("-")
            return (normalize(stem), version.lower())
    return None


def hashes(name: str, version: str) -> list[str]:
    with urllib.request.urlopen(INDEX + normalize(name) + "/", timeout=60) as answer:
        links = Links()
        links.feed(answer.read().decode())
    found = sorted({d for filename, d in links.files if release_of(filename) == (normalize(name), version.lower())})
    if not found:
        sys.exit(f"{name}=={version}: no file on {INDEX}")
    return found


def rewrite(path: str) -> None:
    """Rewrites `path`: comments and blank lines kept, old hash lines dropped, each pin
    followed by every PyPI hash of its version."""
    out = []
    for line in open(path).read().splitlines():
        stripped = line.strip()
        if stripped.startswith("--hash"):
            continue
        match = PIN.match(stripped)
        if not match:
            out.append(line)
            continue
        digests = hashes(match.group(1), match.group(3))
        out.append(stripped.split()[0] + " \\")
        out.extend(
            f"    --hash=sha256:{d}" + (" \\" if i < len(digests) - 1 else "")
            for i, d in enumerate(digests)
        )
    open(path, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    for file in sys.argv[1:]:
        rewrite(file)
