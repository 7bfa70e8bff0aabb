# nowd in a container: the static binary and nothing else.
#
#   docker build -t nowd . && docker run --rm -p 8080:8080 nowd
#
# The build stage compiles the binary from source with the cargo command that
# `make build` runs (tests/container-test.sh checks that they agree); the last
# stage is FROM scratch with that one file. Where no registry is reachable, the
# `prebuilt` target takes the binary from a host's `make build` instead:
#   make build && docker build --target prebuilt -t nowd .

FROM docker.io/library/rust:1.95-slim-trixie AS build
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY vendor vendor
RUN cargo build --release --locked --target x86_64-unknown-linux-musl

# What both variants run as. No user database in a scratch image: a bare
# numeric, unprivileged UID. 0.0.0.0 inside; the host decides what is published.
FROM scratch AS runtime
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["/nowd", "--listen", "0.0.0.0:8080"]

FROM runtime AS prebuilt
COPY target/x86_64-unknown-linux-musl/release/nowd /nowd

# The default (last) stage: the binary compiled above.
FROM runtime AS nowd
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/nowd /nowd
