//! nowd runs every thread under SCHED_BATCH (src/sched.rs): set by the
//! binary itself when it is started by hand, and by the unit, whose system
//! call filter denies the binary the call.

mod common;

use common::{Nowd, connect};
use std::io::{BufReader, Write};

const SCHED_BATCH: u32 = 3;

/// The scheduling policy of each of nowd's threads (field 41 of
/// /proc/PID/task/TID/stat, counted after the parenthesised name).
fn policies(pid: i32) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let Ok(stat) = std::fs::read_to_string(task.join("stat")) else {
            continue; // a thread that ended meanwhile
        };
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let policy = after_name.split(' ').nth(41 - 3).unwrap().parse().unwrap();
        out.push((task.display().to_string(), policy));
    }
    out
}

#[test]
fn every_thread_runs_under_sched_batch_connection_threads_included() {
    let nowd = Nowd::start();
    // A connection kept open, so that its thread is there to be looked at.
    let mut stream = connect(nowd.addr).unwrap();
    stream
        .write_all(b"GET /now HTTP/1.1\r\nHost: nowd\r\n\r\n")
        .unwrap();
    let response = common::read_response(&mut BufReader::new(&stream), false).unwrap();
    assert_eq!(response.status, 200);

    let policies = policies(nowd.pid());
    // main, the accept thread and at least the connection's thread
    assert!(policies.len() >= 3, "{policies:?}");
    assert!(
        policies.iter().all(|(_, p)| *p == SCHED_BATCH),
        "{policies:?}"
    );
}

#[test]
fn the_unit_sets_sched_batch_itself() {
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/nowd.service"))
            .unwrap();
    let values: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("CPUSchedulingPolicy="))
        .collect();
    assert_eq!(values, ["batch"]);
}
