//! slowhttptest (Debian's `slowhttptest`, a third-party attack tool) in its
//! four modes against the real binary: nowd must stay available throughout
//! and serve at once when the attack ends.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Connections each attack aims to hold, and how long it runs.
const CONNECTIONS: &str = "1000";
const SECONDS: u64 = 12;
/// Slower than this is a stall, not a busy machine.
const STALL: Duration = Duration::from_secs(1);

/// One attack at a time: four at once on a small machine measure the machine.
fn attack(mode: &str, extra: &[&str]) {
    let _turn = one_at_a_time();
    raise_nofile(); // slowhttptest inherits the limit
    let nowd = Nowd::start();
    let name = mode.trim_start_matches('-');
    let dir = std::env::temp_dir().join(format!("nowd-slowhttptest-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = dir.join(name);
    let url = format!("http://{}/now", nowd.addr);
    let secs = SECONDS.to_string();
    let mut tool = Command::new("slowhttptest")
        .args([
            mode,
            "-c",
            CONNECTIONS,
            "-r",
            "500",
            "-l",
            &secs,
            "-p",
            "2",
            "-u",
            &url,
        ])
        .args(extra)
        .arg("-g")
        .arg("-o")
        .arg(&prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("slowhttptest is installed (make test installs it)");

    // Probe as a fresh client every 100 ms while the attack runs.
    let started = Instant::now();
    let (mut probes, mut failed, mut worst) = (0, 0, Duration::ZERO);
    while tool.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(SECONDS + 20),
            "slowhttptest did not end"
        );
        let t = Instant::now();
        probes += 1;
        if !try_get(nowd.addr, "/now").is_ok_and(|r| r.status == 200) {
            failed += 1;
        }
        worst = worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    let recovered = nowd.wait_until_answering(Duration::from_secs(5));

    // slowhttptest's own record: seconds, closed, pending, connected, service available.
    let csv = std::fs::read_to_string(prefix.with_extension("csv")).unwrap_or_default();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let held = rows
        .iter()
        .filter_map(|r| r.get(3)?.trim().parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    let unavailable = rows
        .iter()
        .filter(|r| r.get(4).is_some_and(|v| v.trim() == "0"))
        .count();
    let rss = nowd.status_kib("VmHWM:").unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "slowhttptest {mode}: held at most {held} connections; {failed} of {probes} fresh GET /now failed, \
         the slowest took {worst:?}; slowhttptest's probe found it unavailable in {unavailable} of {} seconds; \
         answering {recovered:?} after the attack ended; nowd peak RSS {rss} KiB",
        rows.len()
    );
    assert!(!rows.is_empty(), "slowhttptest wrote no statistics");
    assert_eq!(failed, 0, "{mode}: fresh clients went unanswered");
    assert!(worst < STALL, "{mode}: a fresh client waited {worst:?}");
    assert_eq!(
        unavailable, 0,
        "{mode}: slowhttptest saw the service unavailable"
    );
    assert!(recovered < Duration::from_secs(1));
}

#[test]
fn slow_headers() {
    // A header line a second: never idle, cut at the head deadline.
    attack("-H", &["-i", "1"]);
}

#[test]
fn slow_body() {
    attack("-B", &["-i", "1", "-s", "8192"]);
}

#[test]
fn range_attack() {
    attack("-R", &["-a", "10", "-b", "3000"]);
}

#[test]
fn slow_read() {
    attack(
        "-X",
        &["-k", "4", "-n", "1", "-w", "1", "-y", "64", "-z", "16"],
    );
}
