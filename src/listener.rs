//! The listening socket and the kernel-side limits nowd sets on it.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// A response write that cannot proceed for this long fails (SO_SNDTIMEO).
/// Answers are ~200 bytes and fit in any socket buffer, so only a client that
/// stopped reading with its window full ever waits on this; a single thread
/// answers every request, so the wait must be short.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(500);

/// Binds `addr`. Accepted sockets inherit SO_SNDTIMEO from the listener on
/// Linux, which covers the writes tiny_http makes without exposing its sockets.
/// (SO_RCVTIMEO is not set here: on a listener it also times out accept(2),
/// which ends tiny_http's accept loop. Reads are bounded by the reaper.)
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    set_timeout(listener.as_raw_fd(), libc::SO_SNDTIMEO, SEND_TIMEOUT)?;
    Ok(listener)
}

fn set_timeout(fd: RawFd, option: libc::c_int, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as _,
        tv_usec: timeout.subsec_micros() as _,
    };
    setsockopt(fd, libc::SOL_SOCKET, option, &tv)
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

/// The leading part of Linux's `struct tcp_info` (linux/tcp.h), up to
/// `tcpi_notsent_bytes`. The kernel copies as much as the caller asks for.
#[repr(C)]
#[derive(Default)]
pub struct TcpInfo {
    pub state: u8,
    _u8: [u8; 7],
    _rto_to_fackets: [u32; 9],
    _last_data_sent: u32,
    _last_ack_sent: u32,
    /// Milliseconds since data last arrived.
    pub last_data_recv: u32,
    _last_ack_recv_to_total_retrans: [u32; 12],
    _rates_and_bytes: [u64; 4],
    _segs: [u32; 2],
    /// Bytes written by nowd that the peer has not let the kernel send yet.
    pub notsent_bytes: u32,
}

pub const TCP_LISTEN: u8 = 10;

/// TCP_INFO for `fd`; an error for descriptors that are not TCP sockets.
pub fn tcp_info(fd: RawFd) -> io::Result<TcpInfo> {
    let mut info = TcpInfo::default();
    let mut len = size_of::<TcpInfo>() as libc::socklen_t;
    // SAFETY: info is a writable buffer of len bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut TcpInfo).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(info)
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    const TCP_ESTABLISHED: u8 = 1;

    #[test]
    fn tcp_info_layout_matches_the_kernel() {
        assert_eq!(std::mem::offset_of!(TcpInfo, last_data_recv), 52);
        assert_eq!(std::mem::offset_of!(TcpInfo, notsent_bytes), 144);
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(tcp_info(listener.as_raw_fd()).unwrap().state, TCP_LISTEN);
        let mut client = TcpStream::connect(addr).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let info = tcp_info(conn.as_raw_fd()).unwrap();
        assert_eq!(info.state, TCP_ESTABLISHED);
        assert_eq!(info.notsent_bytes, 0);
        // The idle clock runs while nothing arrives, and restarts with data.
        std::thread::sleep(Duration::from_millis(300));
        assert!(tcp_info(conn.as_raw_fd()).unwrap().last_data_recv >= 250);
        std::io::Write::write_all(&mut client, b"x").unwrap();
        std::thread::sleep(Duration::from_millis(10));
        assert!(tcp_info(conn.as_raw_fd()).unwrap().last_data_recv < 250);
    }

    #[test]
    fn accepted_sockets_inherit_the_send_timeout() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let _c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, _) = listener.accept().unwrap();
        assert_eq!(conn.write_timeout().unwrap(), Some(SEND_TIMEOUT));
    }
}
