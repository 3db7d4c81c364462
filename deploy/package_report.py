#!/usr/bin/env python3
"""Zip every `sam build` artifact like `sam deploy` does and check it (run by `make package`).

For each .aws-sam/build/<LogicalId>/ directory: writes target/package/<LogicalId>.zip
(deflate, as SAM uploads it), prints its size, and for every ELF file in it the highest
GLIBC_x.y symbol version it needs (`objdump -T`, which reads the version tables of an aarch64
binary on an x86_64 host too) and its machine (the ELF header's e_machine). Fails when an
artifact could not work on Lambda: a binary needing a glibc newer than Amazon Linux 2023's
2.34, a binary for another architecture than --arch, or a zip over Lambda's 50 MiB limit for a
direct upload; and when a native zip (function or layer, no Python in it) is over the
project's size budget (--max-bytes, default 5,000,000 B, BENCHMARKS.md).
Writes the table to target/package/report.md as well.

    package_report.py [--arch x86_64|arm64] [--build-dir .aws-sam/build] [--max-bytes N]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AL2023_GLIBC = (2, 34)
# Lambda's limit for a zip uploaded directly (sam deploy goes through S3, limit 250 MB unzipped).
LAMBDA_ZIP_LIMIT = 50 * 2**20
GLIBC_VERSION = re.compile(r"\bGLIBC_(\d+)\.(\d+)(?:\.(\d+))?\b")


def is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def max_glibc(path: Path) -> tuple[int, ...] | None:
    out = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True, check=True).stdout
    versions = [tuple(int(p) for p in m.groups() if p is not None) for m in GLIBC_VERSION.finditer(out)]
    return max(versions) if versions else None


# ELF e_machine values of the two Lambda architectures, as --arch names them.
ELF_MACHINES = {62: "x86_64", 183: "arm64"}


def elf_machine(path: Path) -> str:
    """The ELF header's e_machine (`objdump -f` of a host-only binutils says UNKNOWN for aarch64)."""
    with path.open("rb") as f:
        header = f.read(20)
    byteorder = "little" if header[5:6] == b"\x01" else "big"
    machine = int.from_bytes(header[18:20], byteorder)
    return ELF_MACHINES.get(machine, f"e_machine {machine}")


def zip_dir(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            z.write(f, f.relative_to(src))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="")
    ap.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build")
    ap.add_argument("--max-bytes", type=int, default=5_000_000)
    ap.add_argument(
        "--budget-warns",
        action="store_true",
        help="a native zip over --max-bytes is a warning, not a failure (rustup builds)",
    )
    args = ap.parse_args()

    artifacts = sorted(d for d in args.build_dir.iterdir() if d.is_dir()) if args.build_dir.is_dir() else []
    if not artifacts:
        print(f"no artifacts under {args.build_dir}: run `make package` (sam build) first", file=sys.stderr)
        return 1
    problems: list[str] = []
    warnings: list[str] = []
    rows = ["| artifact | arch | unzipped | zip | max GLIBC symbol version |", "|---|---|---|---|---|"]
    for d in artifacts:
        zipped = ROOT / "target" / "package" / f"{d.name}.zip"
        zip_dir(d, zipped)
        size = zipped.stat().st_size
        unzipped = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
        elves = [p for p in d.rglob("*") if p.is_file() and is_elf(p)]
        glibc = [v for v in (max_glibc(p) for p in elves) if v]
        newest = max(glibc) if glibc else None
        machines = sorted({elf_machine(p) for p in elves}) or ["-"]
        shown = "GLIBC_" + ".".join(map(str, newest)) if newest else "none"
        rows.append(
            f"| {d.name} | {', '.join(machines)} | {unzipped / 2**20:.2f} MiB | "
            f"{size / 2**20:.2f} MiB ({size} B) | {shown} |"
        )
        if size > LAMBDA_ZIP_LIMIT:
            problems.append(f"{zipped.name}: {size} bytes, over Lambda's {LAMBDA_ZIP_LIMIT}-byte limit")
        elif size > args.max_bytes and not any(d.rglob("*.py")):
            over = f"{zipped.name}: {size} bytes, over the {args.max_bytes}-byte size budget"
            (warnings if args.budget_warns else problems).append(over)
        if args.arch and any(m != args.arch for m in machines if m != "-"):
            problems.append(f"{d.name}: binaries for {', '.join(machines)}, not {args.arch}")
        if newest and newest[:2] > AL2023_GLIBC:
            problems.append(f"{d.name}: needs {shown}, newer than Amazon Linux 2023's glibc 2.34")
    table = "\n".join(rows)
    print(f"\nsam build artifacts ({args.arch or 'as built'}), zipped under target/package/:\n{table}")
    (ROOT / "target" / "package" / "report.md").write_text(table + "\n")
    for w in warnings:
        print(f"package: warning: {w} (PACKAGE_TOOLCHAIN=debian builds smaller zips)", file=sys.stderr)
    for p in problems:
        print(f"package: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
