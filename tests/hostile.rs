//! Hostile clients against the real binary: slow and idle connections, header
//! floods, descriptor exhaustion and garbage. Each test prints what it measured.

mod common;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// What nowd promises: the very constants it passes to tiny_http.
#[path = "../src/limits.rs"]
#[allow(dead_code)]
mod limits;
use limits::{HEAD_TIMEOUT, IDLE_TIMEOUT, MAX_CONNECTION_AGE};
/// How late a deadline may be kept, on a busy machine.
const SLACK: Duration = Duration::from_millis(500);

/// True once the server has closed `s` (end of file or reset).
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue, // e.g. a 400 answer before the close
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    s.set_nonblocking(false).unwrap();
    closed
}

fn fresh_get_latency(nowd: &Nowd) -> Duration {
    let start = Instant::now();
    let r = get(nowd.addr, "/now");
    assert_eq!(r.status, 200);
    start.elapsed()
}

#[test]
fn a_thousand_slow_clients_neither_delay_a_fresh_one_nor_stay_open() {
    let _turn = one_at_a_time();
    raise_nofile();
    let nowd = Nowd::start();
    let mut slow: Vec<TcpStream> = (0..1000)
        .map(|i| {
            let mut s = connect(nowd.addr).unwrap();
            // Half say nothing at all, half start a request and stall (slowloris).
            if i % 2 == 0 {
                s.write_all(b"GET /now HTTP/1.1\r\nHost: nowd\r\nX-Slow: ")
                    .unwrap();
            }
            s
        })
        .collect();
    let opened = Instant::now();
    std::thread::sleep(Duration::from_millis(300)); // let nowd accept them all
    let rss_kib = nowd.status_kib("VmRSS:").unwrap();
    let threads = nowd.threads().unwrap();

    let worst = (0..50).map(|_| fresh_get_latency(&nowd)).max().unwrap();
    eprintln!(
        "1000 slow connections: worst fresh /now {worst:?}, nowd RSS {rss_kib} KiB, {threads} threads"
    );
    assert!(
        worst < Duration::from_millis(100),
        "fresh client waited {worst:?}"
    );

    // Every slow connection is cut off once it has been idle long enough.
    let deadline = opened + IDLE_TIMEOUT + SLACK;
    while !slow.is_empty() && Instant::now() < deadline + Duration::from_secs(1) {
        slow.retain_mut(|s| !closed_by_server(s));
        std::thread::sleep(Duration::from_millis(50));
    }
    let cut_after = opened.elapsed();
    eprintln!(
        "slow connections cut off after {cut_after:?}; {} left open",
        slow.len()
    );
    assert!(
        slow.is_empty(),
        "{} slow connections still open after {cut_after:?}",
        slow.len()
    );
    assert!(
        cut_after >= IDLE_TIMEOUT - Duration::from_millis(500),
        "cut too early: {cut_after:?}"
    );
    assert_eq!(get(nowd.addr, "/now").status, 200);
}

#[test]
fn keep_alive_connections_stay_open_while_in_use_and_close_when_idle() {
    let _turn = one_at_a_time();
    let nowd = Nowd::start();
    let mut s = connect(nowd.addr).unwrap();
    let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
    // Eight requests a second apart: longer than the idle timeout in all.
    for i in 0..8 {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        s.write_all(b"GET /now HTTP/1.1\r\nHost: nowd\r\n\r\n")
            .unwrap();
        assert_eq!(
            read_response(&mut reader, false).unwrap().status,
            200,
            "request {i}"
        );
    }
    let idle_since = Instant::now();
    let mut buf = [0u8; 1];
    s.set_read_timeout(Some(IDLE_TIMEOUT * 3)).unwrap();
    assert_eq!(
        s.read(&mut buf).unwrap(),
        0,
        "server closes the idle connection"
    );
    let idle = idle_since.elapsed();
    eprintln!("idle keep-alive connection closed after {idle:?}");
    assert!(
        idle >= IDLE_TIMEOUT - Duration::from_millis(500) && idle <= IDLE_TIMEOUT + SLACK,
        "{idle:?}"
    );
}

#[test]
fn a_drip_fed_header_gets_408_at_the_head_deadline() {
    let _turn = one_at_a_time();
    let nowd = Nowd::start();
    let mut s = connect(nowd.addr).unwrap();
    let opened = Instant::now();
    s.write_all(b"GET /now HTTP/1.1\r\nHost: nowd\r\n").unwrap();
    // One header line every half second: never idle, never finished.
    let mut answer = Vec::new();
    let cut_after = loop {
        std::thread::sleep(Duration::from_millis(500));
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        let gone = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(_) => break true,
            }
        };
        s.set_nonblocking(false).unwrap();
        if gone || s.write_all(b"X-Drip: 1\r\n").is_err() {
            break opened.elapsed();
        }
        assert!(opened.elapsed() < HEAD_TIMEOUT * 2, "never cut off");
    };
    let status = String::from_utf8_lossy(&answer);
    let status = status.lines().next().unwrap_or("nothing");
    eprintln!("drip-fed header: {status:?}, connection closed after {cut_after:?}");
    assert!(status.starts_with("HTTP/1.1 408"), "{status:?}");
    assert!(cut_after >= HEAD_TIMEOUT, "{cut_after:?}");
    assert!(
        cut_after <= HEAD_TIMEOUT + SLACK + Duration::from_millis(500),
        "{cut_after:?}"
    );
}

#[test]
fn a_busy_keep_alive_connection_ends_at_its_age_limit_with_every_answer_given() {
    let _turn = one_at_a_time();
    let nowd = Nowd::start();
    let mut s = connect(nowd.addr).unwrap();
    let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
    let opened = Instant::now();
    // A request every 2 s: never idle for long, so only the age limit ends it.
    let mut answered = 0;
    let last = loop {
        s.write_all(b"GET /now HTTP/1.1\r\nHost: nowd\r\n\r\n")
            .unwrap();
        let r = read_response(&mut reader, false).expect("every request is answered");
        assert_eq!(r.status, 200);
        answered += 1;
        if r.header("Connection") == Some("close") {
            break opened.elapsed();
        }
        assert!(opened.elapsed() < MAX_CONNECTION_AGE + Duration::from_secs(5));
        std::thread::sleep(Duration::from_secs(2));
    };
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).unwrap(), 0, "closed after the last answer");
    eprintln!(
        "keep-alive connection: {answered} answers, the last saying Connection: close at {last:?}"
    );
    // It says so in advance: the last answer comes within an idle time of the limit.
    assert!(last >= MAX_CONNECTION_AGE - IDLE_TIMEOUT && last <= MAX_CONNECTION_AGE);
}

/// Streams `chunk` after `start` until nowd answers and closes, or 10 s pass;
/// returns the status line, the bytes sent, and nowd's peak memory.
fn flood(nowd: &Nowd, start: &[u8], chunk: &[u8]) -> (String, usize, u64) {
    let mut s = connect(nowd.addr).unwrap();
    s.write_all(start).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let began = Instant::now();
    let mut sent = start.len();
    while s.write_all(chunk).is_ok() && began.elapsed() < Duration::from_secs(10) {
        sent += chunk.len();
    }
    let mut answer = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.read_to_end(&mut answer); // the answer, then the close (or a reset)
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    (
        status,
        sent,
        nowd.status_kib("VmHWM:").expect("nowd still runs"),
    )
}

/// A fresh client kept waiting this long means nowd stalled; anything less may
/// be a busy machine's scheduling, and is reported, not judged.
const STALL: Duration = Duration::from_secs(1);

/// Far above nowd's need: the bound is what matters, not the figure.
const MEMORY_BOUND_KIB: u64 = 16 * 1024;

/// Floods nowd with `chunk` after `start`; it must answer `status`, keep its
/// memory bounded, and go on serving.
fn assert_flood_refused(what: &str, start: &[u8], chunk: &[u8], status_code: &str) {
    let nowd = Nowd::start();
    let (status, sent, peak_kib) = flood(&nowd, start, chunk);
    eprintln!("{what}: {status:?} after {sent} bytes sent, nowd peak RSS {peak_kib} KiB");
    assert!(
        status.starts_with(&format!("HTTP/1.1 {status_code}")),
        "{status:?}"
    );
    assert!(peak_kib < MEMORY_BOUND_KIB, "peak {peak_kib} KiB");
    assert_eq!(get(nowd.addr, "/now").status, 200);
}

#[test]
fn an_endless_header_line_gets_431_with_memory_bounded() {
    let _turn = one_at_a_time();
    let start = b"GET /now HTTP/1.1\r\nHost: nowd\r\nX-Endless: ";
    assert_flood_refused("endless header line", start, &[b'a'; 64 * 1024], "431");
}

#[test]
fn endless_header_lines_get_431_with_memory_bounded() {
    let _turn = one_at_a_time();
    let headers = b"X-Flood: 0123456789abcdef\r\n".repeat(2048);
    assert_flood_refused("header flood", b"GET /now HTTP/1.1\r\n", &headers, "431");
}

#[test]
fn an_endless_request_line_gets_414_with_memory_bounded() {
    let _turn = one_at_a_time();
    assert_flood_refused("endless request line", b"GET /", &[b'a'; 64 * 1024], "414");
}

#[test]
fn a_body_never_sent_neither_stalls_others_nor_costs_memory() {
    let _turn = one_at_a_time();
    let nowd = Nowd::start();
    for announced in [
        "Content-Length: 5000",
        "Content-Length: 100000000000",
        "Content-Length: 18446744073709551615",
        "Transfer-Encoding: chunked",
        "Content-Length: 10\r\nExpect: 100-continue",
    ] {
        let mut s = connect(nowd.addr).unwrap();
        write!(s, "POST /now HTTP/1.1\r\nHost: nowd\r\n{announced}\r\n\r\n").unwrap();
        let r = read_response(&mut std::io::BufReader::new(s.try_clone().unwrap()), false).unwrap();
        assert_eq!(r.status, 405, "{announced}");
        assert_eq!(
            r.header("Connection"),
            Some("close"),
            "{announced}: the body is not read"
        );
        let worst = (0..10).map(|_| fresh_get_latency(&nowd)).max().unwrap();
        assert!(
            worst < Duration::from_millis(100),
            "{announced}: others waited {worst:?}"
        );
        assert!(
            closed_by_server(&mut s) || {
                std::thread::sleep(Duration::from_millis(200));
                closed_by_server(&mut s)
            }
        );
    }
    let peak_kib = nowd.status_kib("VmHWM:").expect("nowd still runs");
    eprintln!(
        "bodies announced and never sent: all answered 405 and closed, peak RSS {peak_kib} KiB"
    );
    assert!(peak_kib < MEMORY_BOUND_KIB);
}

#[test]
fn a_burst_of_new_connections_is_answered_at_once() {
    let _turn = one_at_a_time();
    raise_nofile();
    let nowd = Nowd::start();
    // Keep-alive connections hold their thread: a burst must not queue behind them.
    let began = Instant::now();
    let mut burst: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = connect(nowd.addr).unwrap();
            s.write_all(b"GET /now HTTP/1.1\r\nHost: nowd\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    for (i, s) in burst.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let r = read_response(&mut std::io::BufReader::new(s.try_clone().unwrap()), false);
        assert_eq!(
            r.map(|r| r.status).ok(),
            Some(200),
            "connection {i} of the burst"
        );
    }
    eprintln!(
        "burst of 200 new keep-alive connections: all answered within {:?}",
        began.elapsed()
    );
    assert!(began.elapsed() < Duration::from_secs(2));
}

#[test]
fn beyond_the_connection_cap_a_client_gets_503_at_once_and_service_resumes() {
    let _turn = one_at_a_time();
    raise_nofile();
    // 64 descriptors: nowd lowers its cap so that they never run out.
    let nowd = Nowd::start_with(&[], Some(64));
    let cap = limits::max_connections(64);
    let opened = Instant::now();
    let mut hoard: Vec<TcpStream> = (0..cap).map(|_| connect(nowd.addr).unwrap()).collect();
    // A connection nowd has not yet seen closed (start_with's last probe) still
    // counts, so a member of the hoard may itself be refused: that is the cap at
    // work. Replace refused members until nowd holds `cap` of them open.
    let mut refused = 0;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let mut all_held = true;
        for s in &mut hoard {
            if closed_by_server(s) {
                *s = connect(nowd.addr).unwrap();
                refused += 1;
                all_held = false;
            }
        }
        if all_held {
            break;
        }
        assert!(
            refused < 3 * cap,
            "nowd keeps refusing connections under its cap"
        );
    }
    let full = Instant::now();
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let started = Instant::now();
        let r = try_get(nowd.addr, "/now");
        worst = worst.max(started.elapsed());
        let status = r.map(|r| r.status).unwrap_or(0); // 0: closed before the answer was read
        assert!(
            matches!(status, 503 | 0),
            "client {i} over the cap got {status} after {:?} ({:?} since the hoard began \
             to open; nowd cuts it after {IDLE_TIMEOUT:?} idle)",
            started.elapsed(),
            opened.elapsed()
        );
    }
    eprintln!(
        "{cap} connections open (the cap at 64 descriptors, {refused} of the hoard refused \
         while filling): 20 more refused, the slowest in {worst:?}"
    );
    assert!(worst < Duration::from_millis(100), "{worst:?}");
    // The hoard is idle: once nowd has closed it, the same process serves again.
    let recovered = loop {
        if try_get(nowd.addr, "/now").is_ok_and(|r| r.status == 200) {
            break full.elapsed();
        }
        assert!(
            full.elapsed() < IDLE_TIMEOUT + Duration::from_secs(2),
            "no recovery"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("serving again {recovered:?} after the cap was reached, same process");
    drop(hoard);
    for _ in 0..20 {
        assert_eq!(get(nowd.addr, "/now").status, 200);
    }
}

#[test]
fn garbage_gets_400_or_a_closed_connection_and_nothing_breaks() {
    let _turn = one_at_a_time();
    let nowd = Nowd::start();
    let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100_000));
    let inputs: Vec<Vec<u8>> = vec![
        b"\r\n\r\n".to_vec(),
        b"HELLO\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET /now\r\n\r\n".to_vec(),
        b"GET /now HTTP/9.9\r\n\r\n".to_vec(),
        b"GET /now HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec(),
        b"GET /now HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n".to_vec(),
        b"GET /n\x00w HTTP/1.1\r\n\r\n".to_vec(),
        b"GET /now HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"GET /now HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"GET /now HTTP/1.1\r\nExpect: 100-sideways\r\n\r\n".to_vec(),
        long_target.into_bytes(),
        (0..=255u8).cycle().take(8192).collect(),
        vec![0u8; 4096],
    ];
    for input in &inputs {
        let mut s = connect(nowd.addr).unwrap();
        s.set_read_timeout(Some(IDLE_TIMEOUT + SLACK + Duration::from_secs(1)))
            .unwrap();
        let _ = s.write_all(input);
        let mut answer = Vec::new();
        let started = Instant::now();
        let _ = s.read_to_end(&mut answer); // until nowd closes (or resets) the connection
        let text = String::from_utf8_lossy(&answer);
        let status = text.split_whitespace().nth(1).unwrap_or("closed");
        assert!(
            matches!(
                status,
                "closed" | "400" | "404" | "405" | "408" | "414" | "417" | "431" | "505"
            ) || text.starts_with("HTTP/1.1 200"),
            "{:?}: got {text:?}",
            String::from_utf8_lossy(&input[..input.len().min(40)])
        );
        assert!(started.elapsed() < IDLE_TIMEOUT + SLACK + Duration::from_millis(500));
        assert_eq!(
            get(nowd.addr, "/now").status,
            200,
            "still serving after garbage"
        );
    }
}

/// What a pipelined flood left behind: was nowd still there, the slowest fresh
/// `GET /now` on another connection during it, nowd's peak RSS, and the
/// answers the flooders read.
struct FloodReport {
    alive: bool,
    worst_fresh: Duration,
    peak_kib: u64,
    answers_read: usize,
}

/// `connections` clients each pipeline `GET /now` for `secs` as fast as nowd
/// takes them; each reads its answers at `read_pace` (bytes per 10 ms; 0:
/// never). Meanwhile a fresh client asks every 20 ms.
fn pipelined_flood(connections: usize, read_pace: usize, secs: u64) -> FloodReport {
    raise_nofile();
    let nowd = Nowd::start();
    let addr = nowd.addr;
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let flooders: Vec<_> = (0..connections)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = connect(addr).unwrap();
                let mut reader = s.try_clone().unwrap();
                let reading = (read_pace > 0).then(|| {
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; read_pace];
                        let mut got = 0;
                        while Instant::now() < stop_at {
                            match reader.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => got += n,
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        got
                    })
                });
                let burst = b"GET /now HTTP/1.1\r\nHost: nowd\r\n\r\n".repeat(2000);
                s.set_write_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                while Instant::now() < stop_at {
                    match s.write(&burst) {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => break, // nowd ended the connection
                    }
                }
                let bytes = reading.map_or(0, |r| r.join().unwrap());
                // An answer is about 190 bytes.
                bytes / 150
            })
        })
        .collect();
    let mut worst_fresh = Duration::ZERO;
    let mut alive = true;
    while Instant::now() < stop_at {
        let started = Instant::now();
        alive &= try_get(addr, "/now").is_ok_and(|r| r.status == 200);
        worst_fresh = worst_fresh.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let answers_read = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    let peak_kib = nowd.status_kib("VmHWM:").unwrap_or(0);
    alive &= get(nowd.addr, "/now").status == 200;
    FloodReport {
        alive,
        worst_fresh,
        peak_kib,
        answers_read,
    }
}

fn assert_flood_harmless(what: &str, r: &FloodReport) {
    eprintln!(
        "{what}: alive {}, worst fresh GET /now {:?}, nowd peak RSS {} KiB, ~{} answers read by the flooders",
        r.alive, r.worst_fresh, r.peak_kib, r.answers_read
    );
    assert!(r.alive, "{what}: nowd stopped answering");
    // Availability, not speed (that is bench/'s): the machine may be busy.
    assert!(
        r.worst_fresh < STALL,
        "{what}: a fresh client waited {:?}",
        r.worst_fresh
    );
    assert!(
        r.peak_kib < MEMORY_BOUND_KIB,
        "{what}: peak {} KiB",
        r.peak_kib
    );
}

#[test]
fn a_pipelining_client_that_never_reads_costs_one_answer_and_is_cut() {
    let _turn = one_at_a_time();
    let r = pipelined_flood(1, 0, 8);
    assert_flood_harmless("one connection pipelining, never reading", &r);
}

#[test]
fn a_pipelining_client_that_reads_slowly_gets_its_answers_at_its_pace() {
    let _turn = one_at_a_time();
    let r = pipelined_flood(1, 4096, 5);
    assert_flood_harmless("one connection pipelining, reading 4 KiB per 10 ms", &r);
    // About 400 KiB/s read for 5 s: most of it answers, none lost for speed.
    assert!(r.answers_read > 5_000, "{} answers", r.answers_read);
}

#[test]
fn fifty_pipelining_clients_at_once_neither_crash_nor_stall_it() {
    let _turn = one_at_a_time();
    let r = pipelined_flood(50, 0, 8);
    assert_flood_harmless("50 connections pipelining, never reading", &r);
}

/// xorshift64*: reproducible garbage without a dependency.
fn garbage(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed >> 12;
            *seed ^= *seed << 25;
            *seed ^= *seed >> 27;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[test]
fn random_garbage_and_truncated_requests_at_speed_break_nothing() {
    let _turn = one_at_a_time();
    raise_nofile();
    let nowd = Nowd::start();
    let addr = nowd.addr;
    let valid = b"GET /now HTTP/1.1\r\nHost: nowd\r\nAccept: application/json;q=0.5\r\n\r\n";
    let stop_at = Instant::now() + Duration::from_secs(5);
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            std::thread::spawn(move || {
                let mut seed = 0x9e37_79b9_7f4a_7c15 ^ (w + 1);
                let mut sent = 0u64;
                while Instant::now() < stop_at {
                    let Ok(mut s) = connect(addr) else { continue };
                    let n = (garbage(&mut seed, 1)[0] as usize) % valid.len();
                    let bytes = match sent % 3 {
                        0 => garbage(&mut seed, 1 + n * 8), // random bytes
                        1 => valid[..n].to_vec(),           // a truncated request
                        _ => [&valid[..n], &garbage(&mut seed, 16)[..]].concat(), // a corrupted one
                    };
                    let _ = s.write_all(&bytes);
                    sent += 1;
                    // Close at once, without waiting for an answer: nowd must cope.
                    drop(s);
                    // At most 500 connections a second per worker: faster, the
                    // loopback's ports run into their own TIME_WAIT tuples and a
                    // SYN, the fresh client's too, waits a second to be resent.
                    std::thread::sleep(Duration::from_millis(2));
                }
                sent
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    while Instant::now() < stop_at {
        let started = Instant::now();
        assert_eq!(get(addr, "/now").status, 200, "still serving");
        worst = worst.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let peak_kib = nowd.status_kib("VmHWM:").expect("nowd still runs");
    eprintln!(
        "{sent} connections of garbage and truncated requests in 5 s: worst fresh GET /now {worst:?}, peak RSS {peak_kib} KiB"
    );
    assert!(sent > 1000, "only {sent} sent");
    assert!(worst < STALL, "{worst:?}");
    // Hundreds of connections are in flight at once here, each with its
    // thread (about 13 KiB resident); what matters is that memory follows
    // the connections open, not the bytes sent.
    assert!(peak_kib < 4 * MEMORY_BOUND_KIB, "peak {peak_kib} KiB");
}
