# nowd: the current time on GET /now.
#
#   make run     serve on 127.0.0.1:8080 (debug log)
#   make build   the static musl release binary
#   make lint    rustfmt and clippy, warnings are errors
#   make test    every test in the project; installs what it needs first
#   make test-vm the image booted as two VMs (qemu), part of make test
#   make fuzz    the fork's request reading under cargo fuzz for FUZZ_SECONDS (600)
#   make bench   nowd against nginx and python http.server, writes docs/BENCHMARKS.md
#   make capacity  memory per open connection under the unit's bounds (docs/CAPACITY.md)
#
# Each part has its own Makefile (healthcheck/, cloudformation/, packer/, bench/),
# so it can be worked on alone; this one builds the binary and calls them.

TARGET  := x86_64-unknown-linux-musl
BINARY  := target/$(TARGET)/release/nowd
export NOWD_BINARY := $(CURDIR)/$(BINARY)

.PHONY: all run build lint test test-rust test-container test-healthcheck test-cloudformation \
        test-image test-vm test-bench bench capacity deps-rust clean fuzz test-fuzz \
        test-differential

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
	shellcheck .ci/run tools/ensure-apt tools/ensure-venv tests/container-test.sh bench/*.sh fuzz/run.sh  # packer/ lints its own

test: lint test-rust test-container test-healthcheck test-cloudformation test-image test-bench test-fuzz test-differential

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

test-bench: build
	$(MAKE) -C bench smoke

# cargo fuzz on the fork's request reading (fuzz/README.md); any crash or hang fails.
FUZZ_SECONDS ?= 600
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

test-fuzz:
	fuzz/run.sh 60

# Mutated requests to nowd and to h11: no desync, hang or crash (tests/differential/).
test-differential: build
	@tools/ensure-venv tests/differential/requirements.txt
	.venv/bin/python -m pytest -q tests/differential

bench: build
	$(MAKE) -C bench bench

capacity: build
	$(MAKE) -C bench capacity

clean:
	cargo clean
