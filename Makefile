# crossfed developer and CI entry points.
#
#   make test      fmt + clippy, then cargo test with the local clouds up (what CI runs)
#   make run       run the list-buckets Lambda locally against the local clouds
#   make bench     release benchmarks with the local clouds up (crossfed-bench-layer, then
#                  crossfed-bench writes BENCHMARKS.md)
#   make localcloud-up / localcloud-down   start / stop moto + fake-gcs-server by hand
#   make validate  sam validate --lint;  make deploy  sam build + sam deploy --guided
#   make clean     stop the local clouds and remove target/localcloud
#
# Local clouds (tests/localcloud/): moto on 127.0.0.1:$(MOTO_PORT),
# fake-gcs-server on http://$(GCS_HOST):$(GCS_PORT); credentials and URLs in
# target/localcloud/env, passed to cargo as CROSSFED_LOCALCLOUD_ENV.

SHELL := /bin/bash
PYTHON ?= python3

export VENV := $(CURDIR)/.venv
SAM_VENV := $(CURDIR)/.venv-sam
export MOTO_PORT ?= 5055
export GCS_HOST ?= 127.0.0.2
export GCS_PORT ?= 80

LOCALCLOUD := tests/localcloud/localcloud.sh
WITH_LOCALCLOUD := tests/localcloud/with-localcloud.sh
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam

.PHONY: all test lint cargo-test run bench venv sam-venv localcloud-up localcloud-down \
        validate deploy clean ext-clients build-CrossfedExtensionLayer

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
	touch $@

# ---- local emulated clouds --------------------------------------------------

localcloud-up: venv
	$(LOCALCLOUD) up

localcloud-down:
	$(LOCALCLOUD) down

# ---- test / run / bench -----------------------------------------------------

test: lint venv ext-clients
	$(WITH_LOCALCLOUD) $(MAKE) --no-print-directory cargo-test

lint: sam-venv
	cargo fmt --all -- --check
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1
	cargo clippy --workspace --all-targets -- -D warnings

# Expects the local clouds up (use `make test`, or `make localcloud-up` first).
cargo-test:
	CROSSFED_LOCALCLOUD_ENV=$(CURDIR)/target/localcloud/env cargo test --workspace

run: venv ext-clients
	cargo build -p list-buckets -p gcs-sync -p cross-cloud-report -p crossfed-extension -p crossfed-tests --bins
	$(WITH_LOCALCLOUD) bash -c 'set -e; \
	  FUNCTIONS_BIN_DIR=$(CURDIR)/target/debug $(CURDIR)/target/debug/crossfed-localrun; \
	  $(CURDIR)/target/debug/crossfed-localrun-layer'

bench: venv ext-clients
	cargo build --release -p crossfed-extension
	$(WITH_LOCALCLOUD) bash -c 'set -e; \
	  CROSSFED_LOCALCLOUD_ENV=$(CURDIR)/target/localcloud/env cargo test --release -p gcs-sync --test large_object -- --ignored bench_one_gib_copy --nocapture; \
	  CROSSFED_LOCALCLOUD_ENV=$(CURDIR)/target/localcloud/env cargo test --release -p list-buckets --test cold_start -- --ignored --nocapture; \
	  cargo run --release -p crossfed-tests --bin crossfed-bench-layer; \
	  cargo run --release -p crossfed-tests --bin crossfed-bench'

# ---- AWS SAM ----------------------------------------------------------------

validate: sam-venv
	$(SAM) validate --lint --region us-east-1

deploy: sam-venv
	$(SAM) build
	$(SAM) deploy --guided

# SAM `BuildMethod: makefile` target of the CrossfedExtensionLayer layer: the extension
# binary at extensions/crossfed-extension (LAYER_ARCH: arm64, or x86_64; arm64 needs
# `rustup target add aarch64-unknown-linux-gnu` and cargo-lambda's zig toolchain).
LAYER_ARCH ?= arm64
build-CrossfedExtensionLayer:
	cargo lambda build --release --extension -p crossfed-extension --bin crossfed-extension \
	  $(if $(filter x86_64,$(LAYER_ARCH)),--x86-64,--arm64) --manifest-path $(CURDIR)/Cargo.toml
	mkdir -p $(ARTIFACTS_DIR)/extensions
	cp $(CURDIR)/target/lambda/extensions/crossfed-extension $(ARTIFACTS_DIR)/extensions/crossfed-extension

# ---- housekeeping -----------------------------------------------------------

clean: localcloud-down
	rm -rf target/localcloud
