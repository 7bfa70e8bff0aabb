# nowd in a container: the static binary and nothing else.
# Build the binary first (make build); the image only copies it.
#   podman build -t nowd . && podman run --rm -p 8080:8080 nowd
FROM scratch
COPY target/x86_64-unknown-linux-musl/release/nowd /nowd
# No user database in a scratch image: a bare numeric, unprivileged UID.
USER 65534:65534
EXPOSE 8080
# 0.0.0.0 inside the container; the host decides what is published.
ENTRYPOINT ["/nowd", "--listen", "0.0.0.0:8080"]
