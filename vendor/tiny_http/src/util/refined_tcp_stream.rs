use std::io::Result as IoResult;
use std::io::{Error as IoError, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::connection::Connection;

pub(crate) enum Stream {
    Http(Connection),
}

impl Stream {
    fn try_clone(&self) -> IoResult<Self> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.try_clone().map(Stream::Http),
        }
    }
}

impl From<Connection> for Stream {
    fn from(tcp_stream: Connection) -> Self {
        Stream::Http(tcp_stream)
    }
}

impl Stream {
    fn secure(&self) -> bool {
        match self {
            Stream::Http(_) => false,
        }
    }

    fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.peer_addr(),
        }
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.set_read_timeout(t),
        }
    }

    fn shutdown(&mut self, how: Shutdown) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.write(buf),
        }
    }

    fn flush(&mut self) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.flush(),
        }
    }
}

pub struct RefinedTcpStream {
    stream: Stream,
    close_read: bool,
    close_write: bool,
    // nowd patch: the instant by which the current read must have finished,
    // set by the connection; and the SO_RCVTIMEO now in force on the socket
    deadline: Option<Deadline>,
    timeout_set: Option<Duration>,
}

/// nowd patch: how long each read may wait, and the instant by which all
/// reads must be done; shared between a connection and its reading socket.
pub(crate) type Deadline = Arc<Mutex<(Option<Duration>, Option<Instant>)>>;

/// SO_RCVTIMEO is set again only when it is this much longer than the time
/// left: a read ends at most this late, and most requests cost no system call.
const TIMEOUT_SLACK: Duration = Duration::from_millis(50);

impl RefinedTcpStream {
    /// nowd patch: returns the error of duplicating the socket (EMFILE when the
    /// process is out of descriptors) instead of panicking in the accept thread.
    pub(crate) fn new<S>(stream: S) -> IoResult<(RefinedTcpStream, RefinedTcpStream)>
    where
        S: Into<Stream>,
    {
        let stream: Stream = stream.into();

        let (read, write) = (stream.try_clone()?, stream);

        let read = RefinedTcpStream {
            stream: read,
            close_read: true,
            close_write: false,
            deadline: None,
            timeout_set: None,
        };

        let write = RefinedTcpStream {
            stream: write,
            close_read: false,
            close_write: true,
            deadline: None,
            timeout_set: None,
        };

        Ok((read, write))
    }

    /// Returns true if this struct wraps around a secure connection.
    #[inline]
    pub(crate) fn secure(&self) -> bool {
        self.stream.secure()
    }

    pub(crate) fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        self.stream.peer_addr()
    }

    /// nowd patch: writes what the socket takes at once, without waiting;
    /// 0 where it takes nothing now.
    pub(crate) fn write_now(&mut self, buf: &[u8]) -> IoResult<usize> {
        let Stream::Http(conn) = &mut self.stream;
        loop {
            match conn.send_now(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(0),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// nowd patch: ends the sending side now (FIN), ahead of the drop.
    pub(crate) fn shutdown_write(&mut self) {
        self.stream.shutdown(Shutdown::Write).ok();
    }

    /// nowd patch: a read ends with `TimedOut` once it has waited its time or the deadline has passed.
    pub(crate) fn set_deadline(&mut self, deadline: Deadline) {
        self.deadline = Some(deadline);
    }

    /// Sets SO_RCVTIMEO to the time left before the deadline, if it must change.
    fn arm(&mut self) -> IoResult<()> {
        let Some(deadline) = &self.deadline else {
            return Ok(());
        };
        let (each, by) = *deadline.lock().unwrap_or_else(|e| e.into_inner());
        let at = match (each.map(|t| Instant::now() + t), by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let left = match at {
            None => None,
            Some(at) => match at.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(IoError::new(ErrorKind::TimedOut, "read deadline passed")),
            },
        };
        let stale = match (self.timeout_set, left) {
            (Some(set), Some(left)) => set > left + TIMEOUT_SLACK || set + TIMEOUT_SLACK < left,
            (set, left) => set != left,
        };
        if stale {
            self.stream.set_read_timeout(left)?;
            self.timeout_set = left;
        }
        Ok(())
    }
}

impl Drop for RefinedTcpStream {
    fn drop(&mut self) {
        if self.close_read {
            self.stream.shutdown(Shutdown::Read).ok();
        }

        if self.close_write {
            self.stream.shutdown(Shutdown::Write).ok();
        }
    }
}

impl Read for RefinedTcpStream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        self.arm()?;
        match self.stream.read(buf) {
            // SO_RCVTIMEO expired: Linux says EAGAIN
            Err(e) if e.kind() == ErrorKind::WouldBlock && self.deadline.is_some() => {
                Err(IoError::new(ErrorKind::TimedOut, "read deadline passed"))
            }
            other => other,
        }
    }
}

impl Write for RefinedTcpStream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        self.stream.flush()
    }
}
