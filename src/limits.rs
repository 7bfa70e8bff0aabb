//! The bounds on every connection, kept by the patched tiny_http.
//!
//! These constants are the one source for the code; the unit
//! (`systemd/nowd.service`, "Bounds") and the image's firewall
//! (`packer/files/etc/nftables.conf`) size their own limits from
//! `MAX_CONNECTIONS`, and `tests/bounds.rs` checks that they agree.
//! `docs/CAPACITY.md` has the arithmetic and the measurement behind it.

use std::time::Duration;

/// A connection that sends nothing for this long between requests is closed:
/// enough for any client on the internet to send a request line, and for
/// keep-alive reuse.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// From the first byte of a request to the end of its head: a drip-fed header
/// (slowloris) gets `408` and is closed after this.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// No connection reads past this age, however it trickles bytes; the answer to
/// a request read before still goes out, saying `Connection: close`.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(30);
/// A client that leaves an answer unread this long has stopped reading: its
/// connection ends. Only that connection's own thread waits on it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections open at once; one more gets `503` and is closed at once.
pub const MAX_CONNECTIONS: usize = 8192;
/// Descriptors kept for everything but connections (the listener and its
/// copy, stdio, the notify socket, one being accepted to be refused).
pub const SPARE_DESCRIPTORS: u64 = 32;

/// The connection cap under an open-file limit of `nofile`: each connection
/// takes two descriptors (tiny_http reads and writes through two), so a low
/// limit lowers the cap and descriptors never run out.
pub fn max_connections(nofile: u64) -> usize {
    let fit = nofile.saturating_sub(SPARE_DESCRIPTORS) / 2;
    MAX_CONNECTIONS.min(usize::try_from(fit).unwrap_or(usize::MAX))
}

/// The limits in the form tiny_http takes them.
pub fn connection_limits(nofile: u64) -> tiny_http::ConnectionLimits {
    tiny_http::ConnectionLimits {
        idle_timeout: Some(IDLE_TIMEOUT),
        head_timeout: Some(HEAD_TIMEOUT),
        max_age: Some(MAX_CONNECTION_AGE),
        write_timeout: Some(WRITE_TIMEOUT),
        max_connections: Some(max_connections(nofile)),
    }
}
