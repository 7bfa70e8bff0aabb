//! The listening socket and the open-file limit.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};

/// Connections the kernel holds, handshake done, until nowd accepts them.
/// std listens with 128: a burst of new clients overflowed it, and each one
/// past it waited for its SYN to be sent again, a second later. The kernel
/// caps this at net.core.somaxconn (4096 by default).
pub const BACKLOG: libc::c_int = 4096;

/// Each connection's receive and send buffer (SO_RCVBUF, SO_SNDBUF; the
/// kernel doubles the figure for its bookkeeping). Left to autotuning they
/// grow to megabytes (tcp_rmem, tcp_wmem) for a client that pipelines and
/// never reads, all charged to nowd's memory cgroup: a few hundred such
/// connections would reach MemoryMax. A request head is at most 24 KiB and
/// an answer a few hundred bytes, so small fixed buffers cost nothing but a
/// few round trips to a client with an outsized head. docs/CAPACITY.md has
/// the measured cost.
pub const SOCKET_BUFFER: libc::c_int = 4096;

/// Binds `addr`, with a longer backlog and small socket buffers that
/// accepted sockets inherit. Deadlines and the connection cap are kept per
/// connection by tiny_http (`limits.rs`), not on the listener.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    let fd = listener.as_raw_fd();
    for option in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        setsockopt(fd, libc::SOL_SOCKET, option, &SOCKET_BUFFER)?;
    }
    // listen(2) again on a listening socket only changes its backlog.
    // SAFETY: the descriptor is open and ours.
    if unsafe { libc::listen(fd, BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, option: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            option,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raises the soft limit on open files to the hard limit: every connection
/// costs tiny_http two descriptors. Returns the limit now in force.
pub fn raise_nofile_limit() -> io::Result<u64> {
    // SAFETY: rlimit is plain data, filled by getrlimit.
    let mut lim: libc::rlimit = unsafe { zeroed() };
    // SAFETY: lim is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: lim is a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn accepted_sockets_inherit_the_small_buffers() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let _c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, _) = listener.accept().unwrap();
        for option in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
            let mut v: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: v is a writable c_int of len bytes.
            let rc = unsafe {
                libc::getsockopt(
                    conn.as_raw_fd(),
                    libc::SOL_SOCKET,
                    option,
                    (&mut v as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0);
            // Linux reports the doubled figure it accounts.
            assert_eq!(v, 2 * SOCKET_BUFFER, "option {option}");
        }
    }
}
