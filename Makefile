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
TEST_BINARY  := target/$(TARGET)/$(TEST_PROFILE)/nowd
VENV    := .venv
RUFF    := $(VENV)/bin/ruff
RUFF_STAMP := $(VENV)/.lint-requirements.stamp

.PHONY: all run build toolchain deps lint lint-rust lint-python lint-shell check \
        check-healthcheck check-cloudformation check-workflows test root test-binary test-rust test-release-binary \
        test-container test-healthcheck test-cloudformation test-image test-vm test-bench \
        bench capacity clean

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
	tools/ensure-apt file slowhttptest shellcheck
	@rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET)
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy rustfmt
	$(MAKE) -C healthcheck deps

build: toolchain
	cargo build --release --locked --target $(TARGET)

lint: lint-rust lint-python lint-shell

lint-rust: toolchain
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings

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
	shellcheck .ci/run tools/ensure-apt tools/ensure-venv tests/container-test.sh bench/*.sh  # packer/ lints its own

# The workflows' linters (actionlint, zizmor) where the lint-workflows target exists.
check-workflows:
	@if $(MAKE) -n lint-workflows >/dev/null 2>&1; then $(MAKE) lint-workflows; \
	 else echo "make check: no lint-workflows target: workflows not linted"; fi

# Each part a prerequisite, so that make -k check reports every failing part.
check: lint test-rust check-healthcheck check-cloudformation check-workflows

check-healthcheck: test-binary
	$(MAKE) -C healthcheck check NOWD_BINARY=$(CURDIR)/$(TEST_BINARY)

check-cloudformation:
	$(MAKE) -C cloudformation lint

root:
	@[ "$$(id -u)" -eq 0 ] || { echo "make test: needs root (namespaces, nspawn, VMs);" \
	  "make check is the lane without it" >&2; exit 1; }

# make check's parts once, on the release build, then what needs root, a
# container engine or VMs.
test: root deps
	$(MAKE) TEST_PROFILE=release check test-release-binary test-container test-healthcheck \
	    test-cloudformation test-image test-bench

# The nowd the tests start (NOWD_BINARY): with TEST_PROFILE=release, make build's.
test-binary: toolchain
	cargo build --locked --profile $(TEST_PROFILE) --target $(TARGET)

# Unit and integration tests, on nowd built in TEST_PROFILE.
test-rust: test-binary
	cargo test --locked --no-fail-fast --profile $(TEST_PROFILE) --target $(TARGET) -- --show-output

# Static (static-pie keeps ASLR) and under 1 MiB, as the image and container assume.
test-release-binary: build
	@command -v file >/dev/null || { echo "make: needs file(1): Debian package file" >&2; exit 1; }
	@file $(BINARY) | grep -q 'static-pie linked\|statically linked' || { file $(BINARY); exit 1; }
	@size=$$(stat -c %s $(BINARY)); echo "nowd binary: $$size bytes, $$(file -b $(BINARY) | cut -d, -f1-5)"; \
	  [ $$size -lt 1048576 ] || { echo "binary is over 1 MiB" >&2; exit 1; }

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

bench: build
	$(MAKE) -C bench bench NOWD_BINARY=$(CURDIR)/$(BINARY)

capacity: build
	$(MAKE) -C bench capacity NOWD_BINARY=$(CURDIR)/$(BINARY)

clean:
	cargo clean
