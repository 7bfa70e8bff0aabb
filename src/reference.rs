//! nowd's own check of the clock it serves: an SNTP query (RFC 4330) to the
//! time reference, 169.254.169.123 on EC2 (the Amazon Time Sync Service, the
//! same one chrony follows), about once a second from the request loop.
//!
//! Why not only the kernel's figures: chrony sets the kernel's maximum error
//! to the source's root delay/2 + root dispersion, not to the offset it is
//! still slewing away, so after the reference steps by 2 s the kernel keeps
//! reporting a few hundred milliseconds or less while every answer is 2 s
//! off. Measuring the served clock directly bounds its error as ClockBound
//! does: |offset| + root dispersion + root delay/2 + round trip/2, plus
//! what the clock may have drifted since the sample was taken.
//!
//! The socket is never bound explicitly: it gets its port from connect()
//! (autobind), so the unit's `SocketBindDeny=any` stays as it is, and being
//! connected, the kernel passes it only datagrams from the reference.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a query is sent; an answer that has not come by then is lost.
pub const QUERY_INTERVAL: Duration = Duration::from_secs(1);
const POLL_SPACING: Duration = Duration::from_millis(20);
/// A sample older than this says nothing any more: /healthz turns 503 about
/// this long after the reference goes silent (or the path to it breaks).
pub const MAX_SAMPLE_AGE: Duration = Duration::from_secs(4);
/// How fast the served clock may wander from the reference between samples
/// beyond what CLOCK_MONOTONIC_RAW shows: the oscillator's own frequency
/// error, taken as at least 500 ppm (the kernel's MAXFREQ, also what it adds
/// to its maximum error per second), or as fast as the offset was seen to
/// change between the last two samples if that is faster (a virtual
/// machine's oscillator can be off by far more than a crystal).
const MIN_DRIFT_PPM: i128 = 500;

/// Seconds from 1900 (NTP's era 0) to 1970.
const NTP_UNIX_OFFSET: i128 = 2_208_988_800;
const NS: i128 = 1_000_000_000;

/// One answer of the reference, reduced to what bounds the served clock's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Reference minus served clock, nanoseconds (positive: nowd is behind).
    pub offset_ns: i128,
    /// Round trip of the query, minus the server's own time.
    pub round_trip_ns: i128,
    pub root_delay_ns: i128,
    pub root_dispersion_ns: i128,
}

impl Sample {
    /// The bound at the moment of the sample: ClockBound's form.
    pub fn error_bound_ns(&self) -> i128 {
        self.offset_ns.abs()
            + self.root_dispersion_ns
            + self.root_delay_ns / 2
            + self.round_trip_ns / 2
    }
}

/// What the reference says about the served clock right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The served clock is within `error_bound_us` of the reference.
    Measured {
        offset_us: i64,
        error_bound_us: i64,
        age_ms: i64,
    },
    /// No usable recent answer; the reason, in a few words.
    Unknown(String),
}

/// A datagram from the reference, checked and turned into a sample.
/// `t1`/`t4` are the served clock when the query left and the answer came,
/// in nanoseconds since 1970; `t1` is also the query's transmit timestamp.
pub fn parse_answer(packet: &[u8], t1: i128, t4: i128) -> Result<Sample, String> {
    if packet.len() < 48 {
        return Err(format!("short answer ({} bytes)", packet.len()));
    }
    let leap = packet[0] >> 6;
    let mode = packet[0] & 7;
    let stratum = packet[1];
    if mode != 4 {
        return Err(format!("answer in mode {mode}, not 4 (server)"));
    }
    if ntp_timestamp(&packet[24..32]) != to_ntp(t1) {
        return Err("answer to another query (origin timestamp)".into());
    }
    if stratum == 0 {
        let code = String::from_utf8_lossy(&packet[12..16]).into_owned();
        return Err(format!("kiss-o'-death {code:?}"));
    }
    if leap == 3 {
        return Err("reference not synchronised (leap indicator 3)".into());
    }
    let t2 = from_ntp(ntp_timestamp(&packet[32..40]));
    let t3 = from_ntp(ntp_timestamp(&packet[40..48]));
    Ok(Sample {
        offset_ns: ((t2 - t1) + (t3 - t4)) / 2,
        round_trip_ns: ((t4 - t1) - (t3 - t2)).max(0),
        root_delay_ns: short_format(&packet[4..8]),
        root_dispersion_ns: short_format(&packet[8..12]),
    })
}

/// A client query (version 4, mode 3) whose transmit timestamp is `t1`.
pub fn query(t1: i128) -> [u8; 48] {
    let mut q = [0u8; 48];
    q[0] = 4 << 3 | 3;
    q[40..48].copy_from_slice(&to_ntp(t1).to_be_bytes());
    q
}

fn ntp_timestamp(b: &[u8]) -> u64 {
    u64::from_be_bytes(b.try_into().expect("8 bytes"))
}

fn to_ntp(unix_ns: i128) -> u64 {
    let secs = unix_ns.div_euclid(NS) + NTP_UNIX_OFFSET;
    let frac = (unix_ns.rem_euclid(NS) << 32) / NS;
    ((secs as u64) << 32) | frac as u64
}

/// NTP era 0 (to 2036), which is what every server sends until then; after
/// that, times before 1970 + 2^31 s belong to era 1.
fn from_ntp(ts: u64) -> i128 {
    let mut secs = i128::from(ts >> 32);
    if secs < NTP_UNIX_OFFSET {
        secs += 1 << 32;
    }
    (secs - NTP_UNIX_OFFSET) * NS + ((i128::from(ts & 0xffff_ffff) * NS) >> 32)
}

/// NTP's 16.16 seconds (root delay, root dispersion) in nanoseconds.
fn short_format(b: &[u8]) -> i128 {
    (i128::from(u32::from_be_bytes(b.try_into().expect("4 bytes"))) * NS) >> 16
}

fn realtime_ns() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// CLOCK_MONOTONIC_RAW: the oscillator, neither slewed nor stepped by chrony.
fn raw_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is valid and writable; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_RAW, &mut ts) };
    i128::from(ts.tv_sec) * NS + i128::from(ts.tv_nsec)
}

struct Taken {
    sample: Sample,
    at: Instant,
    realtime_ns: i128,
    raw_ns: i128,
    /// The drift rate assumed from this sample on (`MIN_DRIFT_PPM`).
    drift_ppm: i128,
}

/// The probe: owns the socket, the query in flight and the latest sample.
pub struct Reference {
    addr: SocketAddr,
    socket: Option<UdpSocket>,
    in_flight: Option<i128>,
    next_query: Instant,
    last_poll: Instant,
    latest: Option<Taken>,
    /// Why the last query or answer failed, for /healthz.
    last_problem: Option<String>,
}

impl Reference {
    pub fn new(addr: SocketAddr) -> Reference {
        Reference {
            addr,
            socket: None,
            in_flight: None,
            next_query: Instant::now(),
            last_poll: Instant::now() - POLL_SPACING,
            latest: None,
            last_problem: None,
        }
    }

    /// Reads what has arrived and sends the next query when it is due; never
    /// blocks. Call it every time the loop wakes (at least every 100 ms).
    pub fn poll(&mut self) {
        // Under load the loop turns per request: a recv per 20 ms is enough
        // (answers are stamped by the kernel, not by this call).
        if self.last_poll.elapsed() < POLL_SPACING {
            return;
        }
        self.last_poll = Instant::now();
        self.receive();
        if Instant::now() < self.next_query {
            return;
        }
        self.next_query = Instant::now() + QUERY_INTERVAL;
        if self.in_flight.take().is_some() {
            self.last_problem = Some(format!("no answer from {} within 1 s", self.addr));
        }
        if let Err(e) = self.send() {
            // Dropped: the next query opens a fresh socket.
            self.socket = None;
            self.last_problem = Some(format!("cannot query {}: {e}", self.addr));
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.socket.is_none() {
            self.socket = Some(connected_socket(self.addr)?);
        }
        let socket = self.socket.as_ref().expect("just opened");
        let t1 = realtime_ns();
        socket.send(&query(t1))?;
        self.in_flight = Some(t1);
        Ok(())
    }

    fn receive(&mut self) {
        let Some(socket) = &self.socket else { return };
        let mut buf = [0u8; 68];
        loop {
            let (n, t4) = match recv_stamped(socket, &mut buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // E.g. ECONNREFUSED after an ICMP port unreachable.
                    self.last_problem = Some(format!("{}: {e}", self.addr));
                    return;
                }
            };
            let Some(t1) = self.in_flight else { continue };
            match parse_answer(&buf[..n], t1, t4) {
                Ok(sample) => {
                    self.in_flight = None;
                    self.last_problem = None;
                    // Both clocks as of now: later, how far the served
                    // clock moved against the raw one since is plain.
                    let (realtime, raw) = (realtime_ns(), raw_ns());
                    let seen_ppm = self.latest.as_ref().map_or(0, |prev| {
                        let change = (sample.offset_ns - prev.sample.offset_ns).abs();
                        change * 1_000_000 / (raw - prev.raw_ns).max(1)
                    });
                    self.latest = Some(Taken {
                        sample,
                        at: Instant::now(),
                        realtime_ns: realtime,
                        raw_ns: raw,
                        drift_ppm: seen_ppm.max(MIN_DRIFT_PPM),
                    });
                }
                Err(problem) => self.last_problem = Some(format!("{}: {problem}", self.addr)),
            }
        }
    }

    /// The served clock's error bound now: the latest sample's, widened by
    /// how far the clock moved against the raw oscillator since (a step or
    /// a slew by chrony) and by the drift assumed for the oscillator.
    pub fn verdict(&self) -> Verdict {
        let Some(t) = &self.latest else {
            return Verdict::Unknown(self.problem_or("no answer yet"));
        };
        let age = t.at.elapsed();
        if age > MAX_SAMPLE_AGE {
            return Verdict::Unknown(self.problem_or("no recent answer"));
        }
        let moved = ((realtime_ns() - t.realtime_ns) - (raw_ns() - t.raw_ns)).abs();
        let drift = age.as_nanos() as i128 * t.drift_ppm / 1_000_000;
        Verdict::Measured {
            offset_us: (t.sample.offset_ns / 1000) as i64,
            error_bound_us: ((t.sample.error_bound_ns() + moved + drift) / 1000) as i64,
            age_ms: age.as_millis() as i64,
        }
    }

    fn problem_or(&self, default: &str) -> String {
        let problem = self.last_problem.as_deref().unwrap_or(default);
        format!("{problem} (reference {})", self.addr)
    }
}

/// A non-blocking UDP socket connected to `addr`, never bound by hand.
fn connected_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the descriptor is owned by the UdpSocket below.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, open socket nobody else owns.
    let socket = unsafe { UdpSocket::from_raw_fd(fd) };
    // The kernel stamps each datagram as it arrives: the loop may be asleep
    // for up to 100 ms, which would otherwise count as round trip.
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor and a c_int option value.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    socket.connect(addr)?;
    Ok(socket)
}

/// One datagram and the served clock when the kernel received it (SO_TIMESTAMPNS;
/// the time of reading, should the stamp be missing).
fn recv_stamped(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, i128)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one timespec control message, aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; all-zero is valid before the fields are set.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at live buffers of the sizes given.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* walk stays within msg_controllen, as the kernel filled it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(i128::from(ts.tv_sec) * NS + i128::from(ts.tv_nsec));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, stamp.unwrap_or_else(realtime_ns)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: i128 = 1_796_000_000 * NS + 123_456_789;

    /// A server's answer as RFC 4330 lays it out.
    fn answer(t2: i128, t3: i128, root_delay_s: f64, root_disp_s: f64) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 4 << 3 | 4;
        p[1] = 3;
        p[4..8].copy_from_slice(&((root_delay_s * 65536.0) as u32).to_be_bytes());
        p[8..12].copy_from_slice(&((root_disp_s * 65536.0) as u32).to_be_bytes());
        p[24..32].copy_from_slice(&to_ntp(T1).to_be_bytes());
        p[32..40].copy_from_slice(&to_ntp(t2).to_be_bytes());
        p[40..48].copy_from_slice(&to_ntp(t3).to_be_bytes());
        p
    }

    fn near(a: i128, b: i128) -> bool {
        (a - b).abs() < 10 // NTP's 2^-32 s rounds to a few ns
    }

    #[test]
    fn offset_and_round_trip_as_rfc_4330_defines_them() {
        // The reference is 2 s ahead; 4 ms each way, 1 ms inside the server.
        let ms = 1_000_000;
        let t2 = T1 + 2 * NS + 4 * ms;
        let t3 = t2 + ms;
        let t4 = T1 + 9 * ms;
        let s = parse_answer(&answer(t2, t3, 0.000_5, 0.010), T1, t4).unwrap();
        assert!(near(s.offset_ns, 2 * NS), "{s:?}");
        assert!(near(s.round_trip_ns, 8 * ms), "{s:?}");
        assert!((s.root_dispersion_ns - 10 * ms).abs() < 20_000, "{s:?}");
        // |2 s| + 10 ms + 0.25 ms + 4 ms
        assert!(
            (s.error_bound_ns() - (2 * NS + 14_250_000)).abs() < 40_000,
            "{s:?}"
        );
    }

    #[test]
    fn ntp_timestamps_round_trip_to_the_nanosecond_scale() {
        for t in [0, T1, 2_085_978_495 * NS + 999_999_999] {
            assert!(near(from_ntp(to_ntp(t)), t), "{t}");
        }
        assert_eq!(query(T1)[0], 0x23);
        assert_eq!(ntp_timestamp(&query(T1)[40..48]), to_ntp(T1));
    }

    #[test]
    fn unusable_answers_are_refused_with_a_reason() {
        let good = answer(T1, T1, 0.0, 0.0);
        assert!(
            parse_answer(&good[..47], T1, T1)
                .unwrap_err()
                .contains("short")
        );
        let mut other = good.clone();
        other[24..32].copy_from_slice(&to_ntp(T1 + NS).to_be_bytes());
        assert!(
            parse_answer(&other, T1, T1)
                .unwrap_err()
                .contains("another query")
        );
        let mut kod = good.clone();
        kod[1] = 0;
        kod[12..16].copy_from_slice(b"RATE");
        assert!(parse_answer(&kod, T1, T1).unwrap_err().contains("RATE"));
        let mut unsync = good.clone();
        unsync[0] |= 3 << 6;
        assert!(parse_answer(&unsync, T1, T1).unwrap_err().contains("leap"));
        let mut client = good;
        client[0] = 4 << 3 | 3;
        assert!(
            parse_answer(&client, T1, T1)
                .unwrap_err()
                .contains("mode 3")
        );
    }
}
