# crossfed developer and CI entry points.
#
#   make test      fmt + clippy, then cargo test with the local clouds up (what CI runs)
#   make run       run the three functions locally against the local clouds, then the
#                  cargo lambda watch/invoke loop once
#   make bench     release benchmarks with the local clouds up (gcs-sync copies, cold start,
#                  crossfed-bench-layer, then crossfed-bench writes BENCHMARKS.md), plus the soak
#   make fuzz      cargo fuzz: every target for FUZZ_SECONDS (60) each, on nightly
#   make localcloud-up / localcloud-down   start / stop moto + fake-gcs-server by hand
#   make lint      fmt + template checks (both architectures) + clippy
#   make package   sam build: every function's bootstrap under .aws-sam/build/ (ARCH=x86_64|arm64,
#                  default: this machine's), then zips, sizes and glibc check (target/package/)
#   make deploy    make package + sam deploy --guided;  make delete  empty the stack's buckets + sam delete
#   make watch     cargo lambda watch against the local clouds (make invoke FUNCTION=... EVENT=...)
#   make coldstart cold starts of the packaged binaries (after make package)
#   make smoke-arm64  make package ARCH=arm64, then every arm64 binary under qemu-user against
#                  the local clouds (functions, the layer with the Python sample, cold starts)
#   make package-tools / arm64-tools  the Debian packages of make package / make smoke-arm64
#                  (installs what is missing, as root)
#   make validate  sam validate --lint
#   make backfill STACK=name [PREFIX=p/]   copy what S3 has and GCS lacks (and repair drift)
#   make clean     stop the local clouds and remove target/localcloud
#
# Local clouds (tests/localcloud/): moto on 127.0.0.1:$(MOTO_PORT),
# fake-gcs-server on http://$(GCS_HOST):$(GCS_PORT); credentials and URLs in
# target/localcloud/env, passed to cargo as CROSSFED_LOCALCLOUD_ENV.

SHELL := /bin/bash
PYTHON ?= python3

export VENV := $(CURDIR)/.venv
SAM_VENV := $(CURDIR)/.venv-sam
LAMBDA_VENV := $(CURDIR)/.venv-lambda
BENCH_VENV := $(CURDIR)/.venv-bench
export MOTO_PORT ?= 5055
export GCS_HOST ?= 127.0.0.1
export GCS_PORT ?= 5056

LOCALCLOUD := tests/localcloud/localcloud.sh
WITH_LOCALCLOUD := tests/localcloud/with-localcloud.sh
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
# cargo-lambda and Zig (python -m ziglang) first on PATH for sam build / cargo lambda.
WITH_CARGO_LAMBDA := env PATH="$(LAMBDA_VENV)/bin:$$PATH"

# Lambda architecture of `make package`/`make deploy`: this machine's by default.
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
export ARCH ?= $(HOST_ARCH)

# The Lambda artifacts (`make package`, either ARCH) are built by Debian's Rust, not rustup:
# rustc-web, cargo-web and rust-web-src from bookworm-security (rustc and cargo 1.96 in
# /usr/bin, the standard library's sources in /usr/lib/rustlib/src/rust). The standard
# library is compiled with the functions (-Z build-std through CARGO_UNSTABLE_BUILD_STD,
# allowed by RUSTC_BOOTSTRAP), so it gets the release profile and PACKAGE_RUSTFLAGS too (the
# prebuilt one brings unwind tables for all the code: BENCHMARKS.md), and no rustup target is
# needed for arm64 on x86_64; Zig links against an old glibc. /usr/bin goes first on PATH
# for that build only (after .venv-lambda/bin: cargo-lambda and Zig);
# RUSTUP=/nonexistent makes cargo lambda skip its `rustup target` check.
# qemu-user and the aarch64 glibc are for `make smoke-arm64`.
PACKAGE_TOOLS := rustc-web cargo-web rust-web-src
SMOKE_ARM64_TOOLS := qemu-user libc6-dev-arm64-cross
PACKAGE_ENV := env PATH="$(LAMBDA_VENV)/bin:/usr/bin:$$PATH" RUSTC_BOOTSTRAP=1 \
  CARGO_UNSTABLE_BUILD_STD=std,panic_abort RUSTUP=/nonexistent
# PACKAGE_TOOLCHAIN=rustup (the default where there is no apt-get, e.g. macOS): the rustup
# toolchain and cargo-lambda as they are, no Debian packages (ARCH=arm64 then needs
# `rustup target add aarch64-unknown-linux-gnu`); the prebuilt standard library keeps its
# unwind tables, so a zip over the 5,000,000 B budget is a warning there, not a failure.
PACKAGE_TOOLCHAIN ?= $(if $(wildcard /usr/bin/apt-get),debian,rustup)
DEBIAN_PACKAGE := $(filter debian,$(PACKAGE_TOOLCHAIN))
STACK ?= crossfed

.PHONY: all test lint cargo-test run bench venv sam-venv lambda-venv localcloud-up localcloud-down \
        validate package deploy delete watch invoke coldstart clean soak fuzz \
        ext-clients build-CrossfedExtensionLayer bench-tools backfill test-tools \
        package-tools arm64-tools smoke-arm64

all: test

# ---- Python venvs (pinned) --------------------------------------------------

venv: $(VENV)/.installed

$(VENV)/.installed: tests/localcloud/requirements.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r tests/localcloud/requirements.txt
	touch $@

sam-venv: $(SAM_VENV)/.installed

$(SAM_VENV)/.installed: tests/localcloud/requirements-sam.txt
	rm -rf $(SAM_VENV)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --disable-pip-version-check -q -r tests/localcloud/requirements-sam.txt
	touch $@

# ---- crossfed-extension clients (pinned Google Python + Node libraries) -----

EXT_VENV := $(CURDIR)/.venv-ext
EXT_CLIENTS := layer/extension/tests/clients

ext-clients: $(EXT_VENV)/.installed $(EXT_CLIENTS)/node/node_modules/.installed

$(EXT_VENV)/.installed: $(EXT_CLIENTS)/python/requirements.txt
	rm -rf $(EXT_VENV)
	$(PYTHON) -m venv $(EXT_VENV)
	$(EXT_VENV)/bin/pip install --disable-pip-version-check -q -r $<
	touch $@

$(EXT_CLIENTS)/node/node_modules/.installed: $(EXT_CLIENTS)/node/package-lock.json
	cd $(EXT_CLIENTS)/node && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

lambda-venv: $(LAMBDA_VENV)/.installed

$(LAMBDA_VENV)/.installed: tests/localcloud/requirements-lambda.txt
	rm -rf $(LAMBDA_VENV)
	$(PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install --disable-pip-version-check -q --require-hashes -r tests/localcloud/requirements-lambda.txt
	touch $@

# What a user would script instead of gcs-sync, for `make bench`: boto3 + google-cloud-storage
# (pinned, in a venv) and rclone (Debian package).
$(BENCH_VENV)/.installed: tests/bench/requirements.txt
	rm -rf $(BENCH_VENV)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --disable-pip-version-check -q -r tests/bench/requirements.txt
	touch $@

bench-tools: $(BENCH_VENV)/.installed
	@command -v rclone >/dev/null || deploy/apt_install.sh rclone

# Debian's libfaketime: the extension's SnapStart test moves the wall clock of a real,
# frozen extension process (as a restore from a snapshot does) and not its own time.
# Installed when root; otherwise that one test is skipped, except under CI.
FAKETIME_LIB := /usr/lib/$(shell uname -m)-linux-gnu/faketime/libfaketime.so.1
test-tools:
	@test -e $(FAKETIME_LIB) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then deploy/apt_install.sh libfaketime; \
	  elif [ -n "$$CI" ]; then echo "CI needs libfaketime: apt-get install libfaketime" >&2; exit 1; \
	  else echo "warning: without libfaketime (sudo apt-get install libfaketime) the extension's SnapStart test is skipped" >&2; fi; }

# ---- local emulated clouds --------------------------------------------------

localcloud-up: venv
	$(LOCALCLOUD) up

localcloud-down:
	$(LOCALCLOUD) down

# ---- test / run / bench -----------------------------------------------------

test: lint venv ext-clients test-tools
	$(WITH_LOCALCLOUD) $(MAKE) --no-print-directory cargo-test

# The template is checked once per Architecture value: SAM transform offline
# (deploy/check_template.py, which also writes target/template-<arch>.yaml), cfn-lint
# and sam validate --lint.
lint: sam-venv
	cargo fmt --all -- --check
	$(SAM_VENV)/bin/python deploy/check_template.py
	for arch in arm64 x86_64; do \
	  $(SAM_VENV)/bin/cfn-lint template.yaml --parameters Architecture=$$arch \
	    GoogleCloudProject=my-project SourceBucketName=crossfed-source \
	    SyncDestination=gs://crossfed-destination/mirror || exit 1; \
	  $(SAM) validate --lint --region us-east-1 -t target/template-$$arch.yaml || exit 1; \
	done
	cargo clippy --workspace --all-targets -- -D warnings

# Expects the local clouds up (use `make test`, or `make localcloud-up` first).
cargo-test:
	CROSSFED_LOCALCLOUD_ENV=$(CURDIR)/target/localcloud/env cargo test --workspace

# The three functions through local Runtime APIs, the Python sample on the layer, then the cargo lambda loop once
# (tests/localcloud/dev-loop.sh check: watch + one invoke of list-buckets).
# Without cargo on PATH (e.g. a non-root user on a machine whose Rust toolchain is root's),
# it runs the binaries built before (make run as the toolchain's owner first) and skips the
# cargo lambda loop, which compiles.
RUN_BINS := crossfed-localrun crossfed-localrun-layer list-buckets gcs-sync cross-cloud-report crossfed-extension
run: venv lambda-venv ext-clients
	@if command -v cargo >/dev/null; then \
	  cargo build -p list-buckets -p gcs-sync -p cross-cloud-report -p crossfed-extension -p crossfed-tests --bins; \
	else for b in $(RUN_BINS); do [ -x target/debug/$$b ] || { \
	  echo "make run: cargo is not on PATH and target/debug/$$b is missing: build first (make run with a Rust toolchain)" >&2; exit 1; }; done; \
	  echo "make run: cargo not on PATH: using the binaries in target/debug"; fi
	$(WITH_LOCALCLOUD) $(WITH_CARGO_LAMBDA) bash -c 'set -e; \
	  FUNCTIONS_BIN_DIR=$(CURDIR)/target/debug $(CURDIR)/target/debug/crossfed-localrun; \
	  CROSSFED_WORKSPACE=$(CURDIR) $(CURDIR)/target/debug/crossfed-localrun-layer; \
	  if command -v cargo >/dev/null; then tests/localcloud/dev-loop.sh check; \
	  else echo "make run: cargo not on PATH: cargo lambda watch loop skipped"; fi'

# cargo lambda watch against the local clouds and fakes (until Ctrl-C); then, in another
# terminal, make invoke FUNCTION=list-buckets EVENT=events/list-buckets.json
WATCH_PORT ?= 9000
FUNCTION ?= list-buckets
EVENT ?= events/$(FUNCTION).json
watch: venv lambda-venv
	cargo build -p crossfed-tests --bin crossfed-localrun
	$(WITH_LOCALCLOUD) $(WITH_CARGO_LAMBDA) WATCH_PORT=$(WATCH_PORT) tests/localcloud/dev-loop.sh watch

invoke: lambda-venv
	$(WITH_CARGO_LAMBDA) cargo lambda invoke $(FUNCTION) --data-file $(EVENT) \
	  --invoke-address 127.0.0.1 --invoke-port $(WATCH_PORT)

# Cold starts of the packaged bootstraps (make package first) under a local Runtime API,
# median of COLDSTART_RUNS fresh processes each.
COLDSTART_RUNS ?= 5
coldstart: venv
	cargo build -p crossfed-tests --bin crossfed-coldstart
	$(WITH_LOCALCLOUD) $(CURDIR)/target/debug/crossfed-coldstart --runs $(COLDSTART_RUNS) \
	  list-buckets=.aws-sam/build/ListBucketsFunction/bootstrap \
	  gcs-sync=.aws-sam/build/GcsSyncFunction/bootstrap \
	  cross-cloud-report=.aws-sam/build/CrossCloudReportFunction/bootstrap

# The Debian packages of `make package` (PACKAGE_TOOLS) and of `make smoke-arm64` (also
# SMOKE_ARM64_TOOLS), installed when missing (deploy/apt_install.sh).
package-tools:
	@deploy/apt_install.sh $(PACKAGE_TOOLS)

arm64-tools:
	@deploy/apt_install.sh $(PACKAGE_TOOLS) $(SMOKE_ARM64_TOOLS)

# make package ARCH=arm64, then the arm64 artifacts under qemu-aarch64 (wrappers in
# target/arm64-qemu, tests/localcloud/qemu-arm64-bins.sh) through the same harnesses as the
# native ones, against the local clouds: the three functions (crossfed-localrun), the Python
# sample on the arm64 layer (x86_64 Python, arm64 extension), then cold starts.
SMOKE_BINS := $(CURDIR)/target/arm64-qemu
smoke-arm64: venv ext-clients arm64-tools
	$(MAKE) --no-print-directory package ARCH=arm64
	cargo build -p crossfed-tests --bin crossfed-localrun --bin crossfed-localrun-layer --bin crossfed-coldstart
	tests/localcloud/qemu-arm64-bins.sh $(SMOKE_BINS)
	$(WITH_LOCALCLOUD) bash -c 'set -e; \
	  FUNCTIONS_BIN_DIR=$(SMOKE_BINS) $(CURDIR)/target/debug/crossfed-localrun; \
	  FUNCTIONS_BIN_DIR=$(SMOKE_BINS) CROSSFED_WORKSPACE=$(CURDIR) $(CURDIR)/target/debug/crossfed-localrun-layer; \
	  $(CURDIR)/target/debug/crossfed-coldstart --runs $(COLDSTART_RUNS) \
	    list-buckets=$(SMOKE_BINS)/list-buckets gcs-sync=$(SMOKE_BINS)/gcs-sync \
	    cross-cloud-report=$(SMOKE_BINS)/cross-cloud-report'

bench: venv bench-tools ext-clients
	cargo build --release -p crossfed-extension
	$(WITH_LOCALCLOUD) bash -c 'set -e; \
	  export CROSSFED_LOCALCLOUD_ENV=$(CURDIR)/target/localcloud/env BENCH_PYTHON=$(BENCH_VENV)/bin/python; \
	  rm -f target/bench-gcs-sync.md; \
	  cargo test --release -p gcs-sync --test bench -- --ignored bench_ --test-threads 1 --nocapture; \
	  cargo test --release -p list-buckets --test bench -- --ignored --nocapture; \
	  cargo run --release -p crossfed-tests --bin crossfed-bench-layer; \
	  cargo run --release -p crossfed-tests --bin crossfed-bench'
	$(MAKE) --no-print-directory soak

# 50 callers x 20 token lifetimes on a simulated clock with injected faults (~1 min).
soak:
	cargo test -p crossfed --test soak -- --ignored --nocapture

# ---- fuzzing (nightly; fuzz/ is its own workspace, never built by `make test`) ---------

FUZZ_SECONDS ?= 60
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_WORK := $(CURDIR)/target/fuzz-corpus
# -O: release without debug assertions (what BENCHMARKS.md figures used); FUZZ_BUILD=
# (empty) gives cargo-fuzz's default, release with debug assertions and overflow checks.
FUZZ_BUILD ?= -O

fuzz:
	@rustup toolchain list | grep -q '^nightly' || { \
	  echo "make fuzz needs the nightly toolchain (rustup toolchain install nightly)"; exit 1; }
	@cargo fuzz --version 2>/dev/null | grep -q '$(CARGO_FUZZ_VERSION)' || \
	  cargo install cargo-fuzz --locked --version =$(CARGO_FUZZ_VERSION)
	set -e; cd fuzz; for t in $$(cargo +nightly fuzz list); do \
	  mkdir -p $(FUZZ_WORK)/$$t; \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  cargo +nightly fuzz run $(FUZZ_BUILD) $$t $(FUZZ_WORK)/$$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -print_final_stats=1; \
	done

# ---- AWS SAM ----------------------------------------------------------------

validate: sam-venv
	$(SAM) validate --lint --region us-east-1

# sam build (samconfig.toml turns on the beta features rust-cargolambda needs) runs
# `cargo lambda build --release [--arm64] --bin <function>` per function (and
# `make build-<LogicalId>` for a layer with BuildMethod: makefile), then
# deploy/package_report.py zips each artifact like sam deploy does and checks size and
# glibc symbol versions.
# No unwind tables in the Lambda binaries, standard library included (it is built with them,
# PACKAGE_ENV): the release profile aborts on panic, nothing unwinds (BENCHMARKS.md). Only
# here, for the Lambda targets: tests unwind.
PACKAGE_RUSTFLAGS := -C force-unwind-tables=no
package: sam-venv lambda-venv $(if $(DEBIAN_PACKAGE),package-tools)
	$(if $(DEBIAN_PACKAGE),$(PACKAGE_ENV),$(WITH_CARGO_LAMBDA)) PYTHON=$(SAM_VENV)/bin/python \
	  CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$(PACKAGE_RUSTFLAGS)" \
	  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$(PACKAGE_RUSTFLAGS)" \
	  $(SAM) build --parameter-overrides Architecture=$(ARCH)
	$(SAM_VENV)/bin/python deploy/package_report.py --arch $(ARCH) $(if $(DEBIAN_PACKAGE),,--budget-warns)

deploy: package
	$(SAM) deploy --guided --stack-name $(STACK) --parameter-overrides Architecture=$(ARCH)

# Empties the stack's versioned buckets (all versions; asks first), then sam delete.
delete: sam-venv
	$(SAM_VENV)/bin/python deploy/empty_buckets.py --stack-name $(STACK)
	$(SAM) delete --stack-name $(STACK)

# SAM `BuildMethod: makefile` target of the CrossfedExtensionLayer layer: the extension
# binary at extensions/crossfed-extension (ARCH: arm64, or x86_64; `make package` sets up
# the toolchain of either, see PACKAGE_ENV).
build-CrossfedExtensionLayer:
	cargo lambda build --release --extension -p crossfed-extension --bin crossfed-extension \
	  $(if $(filter x86_64,$(ARCH)),--x86-64,--arm64) --manifest-path $(CURDIR)/Cargo.toml
	mkdir -p $(ARTIFACTS_DIR)/extensions
	cp $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/lambda/extensions/crossfed-extension \
	  $(ARTIFACTS_DIR)/extensions/crossfed-extension

# Starts a backfill / repair run of the deployed gcs-sync (it continues by itself and
# checkpoints under <destination>/.crossfed/backfill/). Needs the AWS CLI.
STACK ?= crossfed
PREFIX ?=
backfill:
	aws lambda invoke --function-name $(STACK)-gcs-sync --invocation-type Event \
	  --cli-binary-format raw-in-base64-out \
	  --payload '{"backfill":{"prefix":"$(PREFIX)"}}' /dev/stdout

# ---- housekeeping -----------------------------------------------------------

clean: localcloud-down
	rm -rf target/localcloud
