//! nowd measures its own clock against an SNTP server: here one the test
//! runs on loopback, whose time it sets (the real clock plus an offset), or
//! which it silences or makes lie about the query it answers.

mod common;

use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ANSWER: u8 = 0;
const SILENT: u8 = 1;
/// Answers with a wrong origin timestamp, as a spoofer would.
const WRONG_ORIGIN: u8 = 2;

struct Sntp {
    addr: SocketAddr,
    offset_ms: Arc<AtomicI64>,
    mode: Arc<AtomicU8>,
}

/// 1900-01-01 (the NTP era's start) to the Unix epoch, worked out from the
/// calendar rather than copied from src/reference.rs: the test stays its own witness.
const NTP_UNIX_OFFSET_S: i128 = (time::macros::date!(1970 - 01 - 01).to_julian_day()
    - time::macros::date!(1900 - 01 - 01).to_julian_day()) as i128
    * 86_400;

fn ntp_now(offset_ms: i64) -> [u8; 8] {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let ns = t.as_nanos() as i128 + i128::from(offset_ms) * 1_000_000;
    let secs = (ns / 1_000_000_000 + NTP_UNIX_OFFSET_S) as u64;
    let frac = (((ns % 1_000_000_000) << 32) / 1_000_000_000) as u64;
    ((secs << 32) | frac).to_be_bytes()
}

impl Sntp {
    /// A stratum-1 server that answers every mode-3 query from its own thread.
    fn start() -> Sntp {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let offset_ms = Arc::new(AtomicI64::new(0));
        let mode = Arc::new(AtomicU8::new(ANSWER));
        let (o, m) = (offset_ms.clone(), mode.clone());
        std::thread::spawn(move || {
            let mut q = [0u8; 68];
            while let Ok((n, peer)) = socket.recv_from(&mut q) {
                let offset = o.load(Ordering::Relaxed);
                let received = ntp_now(offset);
                let mode = m.load(Ordering::Relaxed);
                if n < 48 || q[0] & 7 != 3 || mode == SILENT {
                    continue;
                }
                let mut a = [0u8; 48];
                a[0] = 4 << 3 | 4;
                a[1] = 1;
                a[12..16].copy_from_slice(b"TEST");
                a[24..32].copy_from_slice(&q[40..48]);
                if mode == WRONG_ORIGIN {
                    a[31] ^= 1;
                }
                a[32..40].copy_from_slice(&received);
                a[40..48].copy_from_slice(&ntp_now(offset));
                let _ = socket.send_to(&a, peer);
            }
        });
        Sntp {
            addr,
            offset_ms,
            mode,
        }
    }
}

fn start_against(sntp: &Sntp) -> Nowd {
    Nowd::start_with(&["--time-reference", &sntp.addr.to_string()], None)
}

fn reference(nowd: &Nowd) -> serde_json::Value {
    get_json(nowd.addr)["reference"].clone()
}

/// Polls the JSON answer until `done` holds, at most `within`; returns the
/// last reference object and how long it took.
fn until(
    nowd: &Nowd,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> (serde_json::Value, Duration) {
    let start = Instant::now();
    loop {
        let r = reference(nowd);
        if done(&r) || start.elapsed() > within {
            return (r, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// /healthz is 503 because nowd has no measurement; its one line.
fn healthz_says_unknown(nowd: &Nowd) -> String {
    let health = get(nowd.addr, "/healthz");
    assert_eq!(health.status, 503);
    assert!(
        health.body.contains("clock error unknown"),
        "{}",
        health.body
    );
    health.body
}

fn offset_us(r: &serde_json::Value) -> Option<i64> {
    r["offset_us"].as_i64()
}

#[test]
fn a_reference_that_agrees_gives_a_small_error_bound() {
    let sntp = Sntp::start();
    let nowd = start_against(&sntp);
    let (r, _) = until(&nowd, Duration::from_secs(3), |r| offset_us(r).is_some());
    let bound = r["error_bound_us"].as_i64().expect("measured");
    assert!(offset_us(&r).unwrap().abs() < 5_000, "{r}");
    assert!((0..10_000).contains(&bound), "loopback: {r}");
    let health = get(nowd.addr, "/healthz");
    // The kernel's part depends on this machine's time daemon; the
    // reference's part must not be what makes it fail.
    assert!(!health.body.contains("clock error"), "{}", health.body);
}

#[test]
fn a_reference_2_s_ahead_is_measured_and_healthz_says_so() {
    let sntp = Sntp::start();
    sntp.offset_ms.store(2_000, Ordering::Relaxed);
    let nowd = start_against(&sntp);
    let (r, _) = until(&nowd, Duration::from_secs(3), |r| offset_us(r).is_some());
    let offset = offset_us(&r).unwrap();
    assert!((offset - 2_000_000).abs() < 5_000, "{r}");
    assert!(r["error_bound_us"].as_i64().unwrap() >= 2_000_000, "{r}");
    let health = get(nowd.addr, "/healthz");
    assert_eq!(health.status, 503);
    assert!(
        health.body.contains("clock error bound") && health.body.contains("limit of 100000 us"),
        "{}",
        health.body
    );
    // And back: the reference agrees again, the next answer shows it.
    sntp.offset_ms.store(0, Ordering::Relaxed);
    let (r, took) = until(&nowd, Duration::from_secs(3), |r| {
        offset_us(r).is_some_and(|o| o.abs() < 5_000)
    });
    assert!(took < Duration::from_secs(3), "{r}");
}

#[test]
fn a_silent_reference_makes_healthz_unknown_within_5_s() {
    let sntp = Sntp::start();
    let nowd = start_against(&sntp);
    until(&nowd, Duration::from_secs(3), |r| offset_us(r).is_some());
    sntp.mode.store(SILENT, Ordering::Relaxed);
    let (r, took) = until(&nowd, Duration::from_secs(8), |r| r["unknown"].is_string());
    assert!(r["unknown"].as_str().unwrap().contains("no answer"), "{r}");
    assert!(
        (Duration::from_secs(3)..Duration::from_secs(6)).contains(&took),
        "unknown after {took:?}"
    );
    healthz_says_unknown(&nowd);
}

#[test]
fn answers_to_another_query_are_not_believed() {
    let sntp = Sntp::start();
    sntp.mode.store(WRONG_ORIGIN, Ordering::Relaxed);
    let nowd = start_against(&sntp);
    let (r, _) = until(&nowd, Duration::from_secs(3), |r| {
        r["unknown"]
            .as_str()
            .is_some_and(|u| u.contains("another query"))
    });
    assert!(offset_us(&r).is_none(), "{r}");
    assert_eq!(get(nowd.addr, "/healthz").status, 503);
}

#[test]
fn no_server_at_the_reference_is_a_clear_503() {
    // A port nobody listens on: ICMP port unreachable, ECONNREFUSED.
    let unused = unanswered_udp_port();
    let nowd = Nowd::start_with(&["--time-reference", &unused.to_string()], None);
    std::thread::sleep(Duration::from_millis(1500));
    let body = healthz_says_unknown(&nowd);
    assert!(body.contains(&unused.to_string()), "{body}");
}
