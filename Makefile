# nowd: the current time on GET /now.
#
#   make run       serve on 127.0.0.1:8080 (debug log)
#   make build     the static musl release binary (no root; installs nothing)
#   make check     the fast lane, no root, a few minutes: rustfmt, clippy, ruff,
#                  shellcheck, cfn-lint, the workflows' linters, the Rust tests
#                  and the healthcheck's tests (Python tools go into .venv)
#   make test      everything, as root, and what CI runs: make deps, make check,
#                  then the container, image, VM and benchmark tests
#   make deps      what make test needs: Debian packages, the musl target, clippy
#   make test-vm   the image booted as two VMs (qemu), part of make test
#   make test-browser  the page on GET / in Debian's Chromium or NOWD_CHROMIUM (Playwright), part of make test
#   make fuzz      the fork's request reading under cargo fuzz for FUZZ_SECONDS (600)
#   make deploy REGION=eu-west-1   bake the AMI, roll it out, verify (docs/DELIVERY.md)
#   make destroy REGION=eu-west-1  delete the stack (destroy-images: the AMIs)
#   make access REGION=eu-west-1   the account's access stack (cloudformation/access.yaml)
#   make bench     nowd against nginx and python http.server, writes docs/BENCHMARKS.md
#   make capacity  memory per open connection under the unit's bounds
#                  (bench/capacity.json, quoted by docs/CAPACITY.md)
#
# Each part has its own Makefile (healthcheck/, cloudformation/, packer/, bench/),
# so it can be worked on alone; this one builds the binary and calls them,
# passing the nowd binary they test as NOWD_BINARY.

TARGET  := x86_64-unknown-linux-musl
BINARY  := target/$(TARGET)/release/nowd
# The profile the tests build nowd in: fast-test (release without LTO) for
# make check, release itself for make test.
TEST_PROFILE ?= fast-test
TEST_BINARY   = target/$(TARGET)/$(TEST_PROFILE)/nowd
VENV    := .venv
RUFF    := $(VENV)/bin/ruff
RUFF_STAMP := $(VENV)/.lint-requirements.stamp

.PHONY: all run build toolchain deps lint lint-rust lint-python lint-shell lint-workflows check \
        check-healthcheck check-cloudformation test root test-binary test-rust test-release-binary \
        test-browser test-container test-healthcheck test-cloudformation test-image test-vm \
        test-bench test-deploy test-docs test-fuzz test-differential fuzz bench capacity clean \
        deploy destroy destroy-images access

all: build

run:
	cargo run --release -- --log-level debug

# Checked, not installed: make deps (or rustup) installs them.
toolchain:
	@rustup target list --installed | grep -qx $(TARGET) || { \
	  echo "make: Rust's $(TARGET) target is missing: rustup target add $(TARGET)" >&2; exit 1; }
	@rustup component list --installed | grep -q '^clippy' || { \
	  echo "make: clippy is missing: rustup component add clippy rustfmt" >&2; exit 1; }

deps:
	tools/ensure-apt file slowhttptest shellcheck jq
	@rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET)
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy rustfmt
	$(MAKE) -C healthcheck deps

build: toolchain
	cargo build --release --locked --target $(TARGET)

lint: lint-rust lint-python lint-shell

lint-rust: toolchain
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

$(RUFF_STAMP): tools/requirements-lint.txt tools/ensure-venv
	tools/ensure-venv tools/requirements-lint.txt
	touch $@

# All the project's Python (ruff.toml); line length 100, Python 3.11.
lint-python: $(RUFF_STAMP)
	$(RUFF) check .
	$(RUFF) format --check .

# Without root, ensure-apt names the missing package rather than install it.
lint-shell:
	@tools/ensure-apt shellcheck
	shellcheck .ci/run tools/ensure-apt tools/ensure-venv tools/deploy tests/container-test.sh bench/*.sh fuzz/run.sh  # packer/ lints its own

# actionlint and zizmor (offline) on every workflow; no root.
lint-workflows:
	@tools/ensure-venv tools/requirements-workflow-lint.txt
	$(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --persona=pedantic .github/workflows/

# Each part a prerequisite, so that make -k check reports every failing part.
check: lint lint-workflows test-rust check-healthcheck check-cloudformation test-deploy test-docs

check-healthcheck: test-binary
	$(MAKE) -C healthcheck check NOWD_BINARY=$(CURDIR)/$(TEST_BINARY)

check-cloudformation:
	$(MAKE) -C cloudformation lint

root:
	@[ "$$(id -u)" -eq 0 ] || { echo "make test: needs root (namespaces, nspawn, VMs);" \
	  "make check is the lane without it" >&2; exit 1; }

# make check's parts once, on the release build, then what needs root, a
# browser, a container engine or VMs. CI splits these prerequisites into
# parallel jobs (.github/workflows/ci.yml; tests/deploy checks the split).
test: TEST_PROFILE = release
test: root deps check test-release-binary test-browser test-container test-healthcheck \
      test-cloudformation test-fuzz test-differential test-image test-bench

# The nowd the tests start (NOWD_BINARY): with TEST_PROFILE=release, make build's.
test-binary: toolchain
	cargo build --locked --profile $(TEST_PROFILE) --target $(TARGET)

# Unit and integration tests, on nowd built in TEST_PROFILE.
test-rust: test-binary
	cargo test --locked --workspace --no-fail-fast --profile $(TEST_PROFILE) --target $(TARGET) -- --show-output

# Static (static-pie keeps ASLR) and under 1 MiB, as the image and container assume.
test-release-binary: build
	@command -v file >/dev/null || { echo "make: needs file(1): Debian package file" >&2; exit 1; }
	@file $(BINARY) | grep -q 'static-pie linked\|statically linked' || { file $(BINARY); exit 1; }
	@size=$$(stat -c %s $(BINARY)); echo "nowd binary: $$size bytes, $$(file -b $(BINARY) | cut -d, -f1-5)"; \
	  [ $$size -lt 1048576 ] || { echo "binary is over 1 MiB" >&2; exit 1; }

# Debian's Chromium, driven by Playwright from PyPI; Playwright's own browser
# download is never run. Screenshots go to $NOWD_TEST_ARTIFACTS (target/test-artifacts).
test-browser: test-binary
	@if [ -z "$$NOWD_CHROMIUM" ]; then tools/ensure-apt chromium; fi
	@tools/ensure-venv tests/browser/requirements.txt
	NOWD_BINARY=$(CURDIR)/$(TEST_BINARY) $(VENV)/bin/python -m pytest -q tests/browser

# Plumbing only: aws, packer and cargo are recorders on PATH. No root.
test-deploy:
	@tools/ensure-venv tests/deploy/requirements.txt
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/deploy

# Every relative link and #heading in the Markdown resolves; no root, no network.
test-docs:
	@tools/ensure-venv tests/docs/requirements.txt
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/docs

# Builds the FROM-scratch image; runs it where a container engine can.
test-container: build
	tests/container-test.sh

# The healthcheck's tests once more, against the zipapp (make check ran the package).
test-healthcheck: test-binary
	$(MAKE) -C healthcheck test-zipapp NOWD_BINARY=$(CURDIR)/$(TEST_BINARY)

# cfn-lint ran in make check.
test-cloudformation:
	$(MAKE) -C cloudformation checkov pytest

# The nspawn boot test and, in packer's `test`, the VM test (test-vm alone).
test-image: build
	$(MAKE) -C packer test NOWD_BINARY=$(CURDIR)/$(BINARY)

test-vm: build
	$(MAKE) -C packer test-vm NOWD_BINARY=$(CURDIR)/$(BINARY)

test-bench: build
	$(MAKE) -C bench smoke NOWD_BINARY=$(CURDIR)/$(BINARY)

# cargo fuzz on the fork's request reading (fuzz/README.md); any crash or hang fails.
FUZZ_SECONDS ?= 600
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

test-fuzz:
	fuzz/run.sh 60

# Mutated requests to nowd and to h11: no desync, hang or crash (tests/differential/).
test-differential: build
	@tools/ensure-venv tests/differential/requirements.txt
	NOWD_BINARY=$(CURDIR)/$(BINARY) $(VENV)/bin/python -m pytest -q tests/differential

bench: build
	$(MAKE) -C bench bench NOWD_BINARY=$(CURDIR)/$(BINARY)

capacity: build
	$(MAKE) -C bench capacity NOWD_BINARY=$(CURDIR)/$(BINARY)

clean:
	cargo clean

# Delivery (tools/deploy; REGION required; STACK, ALARM_EMAIL, REVIEWER=1,
# DRY_RUN=1 optional, passed through the environment).
deploy:
	tools/deploy all

destroy:
	tools/deploy destroy

destroy-images:
	tools/deploy destroy-images

access:
	tools/deploy access
