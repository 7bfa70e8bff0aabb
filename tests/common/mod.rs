//! Starts the real nowd binary on a free loopback port and speaks HTTP to it
//! over plain TCP, so the tests see exactly what a client sees.
#![allow(dead_code)] // each test file uses its own part of this

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_nowd");

pub struct Nowd {
    pub child: Child,
    pub addr: SocketAddr,
}

/// A free port: bind port 0, note it, let it go.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback UDP address nobody listens on (ICMP port unreachable).
pub fn unanswered_udp_port() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Tests that flood nowd or time its answers take turns: two of them side by
/// side on a 2-core machine would measure each other, not nowd.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

impl Nowd {
    pub fn start() -> Nowd {
        Nowd::start_with(&[], None)
    }

    /// Starts nowd with extra arguments and, optionally, a hard limit on open files.
    pub fn start_with(args: &[&str], nofile: Option<u64>) -> Nowd {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["--listen", &addr.to_string(), "--log-level", "warn"]);
        if !args.contains(&"--time-reference") {
            // Tests send nothing beyond loopback: the default reference
            // (169.254.169.123) becomes a loopback port nobody answers on.
            cmd.args(["--time-reference", &unanswered_udp_port().to_string()]);
        }
        cmd.args(args).stdin(Stdio::null());
        if let Some(n) = nofile {
            // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n as _,
                        rlim_max: n as _,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = cmd.spawn().expect("nowd starts");
        let nowd = Nowd { child, addr };
        nowd.wait_until_answering(Duration::from_secs(5));
        nowd
    }

    pub fn wait_until_answering(&self, within: Duration) -> Duration {
        let start = Instant::now();
        while start.elapsed() < within {
            if try_get(self.addr, "/now").is_ok_and(|r| r.status == 200) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("nowd did not answer on {} within {within:?}", self.addr);
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// Waits for exit, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<(ExitStatus, Duration)> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    /// A field of /proc/PID/status in KiB (VmRSS, VmHWM), or None once it has exited.
    pub fn status_kib(&self, field: &str) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = s.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    pub fn threads(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        s.lines()
            .find(|l| l.starts_with("Threads:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

impl Drop for Nowd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Reads one response; `head` says the request was HEAD (no body follows).
pub fn read_response(reader: &mut impl BufRead, head: bool) -> std::io::Result<Response> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').expect("header has a colon");
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut r = Response {
        status,
        headers,
        body: String::new(),
    };
    if !head {
        let len: usize = r.header("Content-Length").map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        r.body = String::from_utf8(body).unwrap();
    }
    Ok(r)
}

/// Sends raw bytes on a new connection and reads one response.
pub fn raw(addr: SocketAddr, request: &[u8], head: bool) -> std::io::Result<Response> {
    let mut s = connect(addr)?;
    s.write_all(request)?;
    read_response(&mut BufReader::new(s), head)
}

pub fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: nowd\r\nConnection: close\r\n\r\n").as_bytes(),
        false,
    )
}

/// `GET /now` as JSON, parsed by a real JSON parser.
pub fn get_json(addr: SocketAddr) -> serde_json::Value {
    let r = raw(
        addr,
        b"GET /now HTTP/1.1\r\nHost: nowd\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        false,
    )
    .unwrap();
    serde_json::from_str(&r.body).expect("valid JSON")
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    try_get(addr, path).unwrap()
}

/// Raises this process's soft open-file limit to its hard limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        lim.rlim_cur as u64
    }
}

/// Microseconds since the epoch of an RFC 3339 `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn rfc3339_micros(s: &str) -> i128 {
    let fmt = time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s, &fmt).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    t.unix_timestamp_nanos() / 1000
}

pub fn now_micros() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000
}
