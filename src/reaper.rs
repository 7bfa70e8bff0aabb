//! Connection deadlines that tiny_http does not keep.
//!
//! tiny_http gives a thread to every connection and reads from it with no
//! timeout, so an idle or slow client (slowloris) would hold that thread and
//! two descriptors forever. SO_RCVTIMEO cannot be set on the listener (it also
//! times out accept), and the accepted sockets stay inside tiny_http, so once a
//! second the main loop walks its own descriptor table and shuts down, on a
//! private duplicate of each socket, the connections that broke a deadline.

use crate::listener::{self, TCP_LISTEN};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// A connection that sends nothing for this long is closed: enough for any
/// client on the internet to send a request line, and for keep-alive reuse.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer, however it trickles bytes (a drip-fed header).
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(30);
/// A client that leaves this much of our output unread has stopped reading.
pub const MAX_UNSENT_BYTES: u32 = 64 * 1024;

/// What one sweep saw.
#[derive(Debug, Default)]
pub struct Sweep {
    pub connections: usize,
    pub closed: usize,
}

/// Descriptors held back for the sweep itself (the directory and one
/// duplicate): when clients have taken every other one, the sweep is what
/// frees them, so it must not need a free descriptor to run.
const RESERVED_FDS: usize = 2;

pub struct Reaper {
    /// When each open connection (by socket inode) was first seen.
    first_seen: HashMap<u64, Instant>,
    reserve: Vec<fs::File>,
}

impl Reaper {
    pub fn new() -> Reaper {
        let mut reaper = Reaper {
            first_seen: HashMap::new(),
            reserve: Vec::new(),
        };
        reaper.refill_reserve();
        reaper
    }

    pub fn sweep(&mut self, now: Instant) -> io::Result<Sweep> {
        self.reserve.clear(); // hand the reserved descriptors to this sweep
        let result = self.sweep_connections(now);
        self.refill_reserve();
        result
    }

    fn refill_reserve(&mut self) {
        while self.reserve.len() < RESERVED_FDS {
            match fs::File::open("/dev/null") {
                Ok(f) => self.reserve.push(f),
                Err(_) => break, // taken meanwhile: the next sweep tries again
            }
        }
    }

    fn sweep_connections(&mut self, now: Instant) -> io::Result<Sweep> {
        let mut sweep = Sweep::default();
        let mut still_open = HashMap::with_capacity(self.first_seen.len());
        for entry in fs::read_dir("/proc/self/fd")? {
            let Some(fd) = entry?
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            if fd <= 2 {
                continue;
            }
            // Work on a duplicate: should tiny_http close `fd` and reuse the
            // number meanwhile, the duplicate still names the socket we judged.
            let Ok(socket) = dup(fd) else { continue };
            let Ok(inode) = inode(&socket) else { continue };
            if still_open.contains_key(&inode) {
                continue; // tiny_http holds each connection twice (read and write halves)
            }
            let Ok(info) = listener::tcp_info(socket.as_raw_fd()) else {
                continue;
            };
            if info.state == TCP_LISTEN {
                continue;
            }
            let first_seen = *self.first_seen.get(&inode).unwrap_or(&now);
            still_open.insert(inode, first_seen);
            sweep.connections += 1;

            let how = if info.notsent_bytes > MAX_UNSENT_BYTES {
                // Fail the pending writes at once rather than after SO_SNDTIMEO each.
                Some(libc::SHUT_RDWR)
            } else if Duration::from_millis(info.last_data_recv.into()) >= IDLE_TIMEOUT
                || now.duration_since(first_seen) >= MAX_CONNECTION_AGE
            {
                // The reading thread sees end-of-file and ends the connection
                // after any answer still owed to it.
                Some(libc::SHUT_RD)
            } else {
                None
            };
            if let Some(how) = how {
                // SAFETY: socket is an open descriptor we own.
                if unsafe { libc::shutdown(socket.as_raw_fd(), how) } == 0 {
                    sweep.closed += 1;
                }
            }
        }
        self.first_seen = still_open;
        Ok(sweep)
    }
}

fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on any descriptor number is safe; a closed one fails.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn inode(fd: &OwnedFd) -> io::Result<u64> {
    // SAFETY: stat is plain data, filled by fstat on an open descriptor.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.st_ino as u64)
}
