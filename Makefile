# nowd: the current time on GET /now.
#
#   make run     serve on 127.0.0.1:8080 (debug log)
#   make build   the static musl release binary
#   make lint    rustfmt and clippy, warnings are errors
#   make test    every test in the project; installs what it needs first
#   make test-vm the image booted as two VMs (qemu), part of make test
#   make test-browser  the page on GET / in Debian's Chromium (Playwright), part of make test
#   make test-docs  every relative link and #heading in the Markdown resolves
#   make bench   nowd against nginx and python http.server, writes docs/BENCHMARKS.md
#   make capacity  memory per open connection under the unit's bounds (docs/CAPACITY.md)
#   make deploy REGION=eu-west-1   bake the AMI, roll it out, verify (docs/DELIVERY.md)
#   make destroy REGION=eu-west-1  delete the stack (destroy-images: the AMIs)
#
# Each part has its own Makefile (healthcheck/, cloudformation/, packer/, bench/),
# so it can be worked on alone; this one builds the binary and calls them.

TARGET  := x86_64-unknown-linux-musl
BINARY  := target/$(TARGET)/release/nowd
export NOWD_BINARY := $(CURDIR)/$(BINARY)

.PHONY: all run build lint test test-rust test-container test-healthcheck test-cloudformation \
        test-image test-vm test-bench test-browser bench capacity deps-rust clean \
        deploy destroy destroy-images access test-deploy lint-workflows test-docs

all: build

run:
	cargo run --release -- --log-level debug

deps-rust:
	@tools/ensure-apt file slowhttptest
	@rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET)
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy rustfmt

build: deps-rust
	cargo build --release --locked --target $(TARGET)

lint: deps-rust
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings
	@tools/ensure-apt shellcheck
	shellcheck .ci/run tools/ensure-apt tools/ensure-venv tests/container-test.sh bench/*.sh  # packer/ lints its own
	$(MAKE) lint-workflows

test: lint test-rust test-browser test-container test-healthcheck test-cloudformation test-image test-bench test-deploy

test-rust: build
	@# Static (static-pie keeps ASLR) and under 1 MiB, as the image and container assume.
	@file $(BINARY) | grep -q 'static-pie linked\|statically linked' || { file $(BINARY); exit 1; }
	@size=$$(stat -c %s $(BINARY)); echo "nowd binary: $$size bytes, $$(file -b $(BINARY) | cut -d, -f1-5)"; \
	  [ $$size -lt 1048576 ] || { echo "binary is over 1 MiB" >&2; exit 1; }
	cargo test --locked --release --target $(TARGET) -- --show-output

# Builds the FROM-scratch image; runs it where a container engine can.
test-container: build
	tests/container-test.sh

test-healthcheck: build
	$(MAKE) -C healthcheck test

test-cloudformation:
	$(MAKE) -C cloudformation test

# The nspawn boot test and, in packer's `test`, the VM test (test-vm alone).
test-image: build
	$(MAKE) -C packer test

test-vm: build
	$(MAKE) -C packer test-vm

# Debian's Chromium, driven by Playwright from PyPI; Playwright's own browser
# download is never run. Screenshots go to $NOWD_TEST_ARTIFACTS (target/test-artifacts).
test-browser: build
	@tools/ensure-apt chromium
	@tools/ensure-venv tests/browser/requirements.txt
	.venv/bin/python -m pytest -q tests/browser

test-bench: build
	$(MAKE) -C bench smoke

bench: build
	$(MAKE) -C bench bench

capacity: build
	$(MAKE) -C bench capacity

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

# Plumbing only: aws, packer and cargo are recorders on PATH. No root.
test-deploy:
	@tools/ensure-venv tests/deploy/requirements.txt
	shellcheck tools/deploy
	.venv/bin/python -m pytest -q -p no:cacheprovider tests/deploy

# Every relative link and #heading in the Markdown resolves; no root, no network.
test-docs:
	@tools/ensure-venv tests/docs/requirements.txt
	.venv/bin/python -m pytest -q -p no:cacheprovider tests/docs

# actionlint and zizmor (offline) on every workflow; no root.
lint-workflows:
	@tools/ensure-venv tools/requirements-workflow-lint.txt
	.venv/bin/actionlint .github/workflows/*.yml
	.venv/bin/zizmor --offline --persona=pedantic .github/workflows/
