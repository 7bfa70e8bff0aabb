//! The two sd_notify(3) messages nowd sends, without libsystemd.
//!
//! Under `Type=notify` systemd waits for READY=1 before it calls the service
//! started; with `WatchdogSec=` it kills and restarts a service that stops
//! sending WATCHDOG=1. nowd sends it only while its accept loop is healthy.

use std::env;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// Set when systemd asked for keep-alives (WATCHDOG_USEC).
    pub watchdog: Option<Duration>,
}

impl Notifier {
    /// `None` when not started by systemd with `NOTIFY_SOCKET`.
    pub fn from_env() -> Option<Notifier> {
        let path = env::var("NOTIFY_SOCKET").ok()?;
        let addr = match path.strip_prefix('@') {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name).ok()?,
            None => SocketAddr::from_pathname(&path).ok()?,
        };
        let watchdog = env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_micros);
        Some(Notifier {
            socket: UnixDatagram::unbound().ok()?,
            addr,
            watchdog,
        })
    }

    pub fn notify(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.addr) {
            log::error!("sd_notify {state}: {e}");
        }
    }
}
