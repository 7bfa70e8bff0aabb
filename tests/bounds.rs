//! The connection cap and the bounds sized from it live in four places: the
//! code (src/limits.rs, src/alloc.rs), the unit, the firewall, and the
//! measurement in bench/capacity.json (written by `make capacity`, quoted by
//! docs/CAPACITY.md). This keeps them in step.

#[path = "../src/alloc.rs"]
#[allow(dead_code)]
mod alloc;
#[path = "../src/limits.rs"]
#[allow(dead_code)]
mod limits;

use std::fs;

fn repo_file(path: &str) -> String {
    fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `Key=` from the unit's [Service] section, exactly once.
fn unit_value(key: &str) -> String {
    let unit = repo_file("systemd/nowd.service");
    let values: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect();
    assert_eq!(
        values.len(),
        1,
        "{key}= in systemd/nowd.service: {values:?}"
    );
    values[0].to_string()
}

fn bytes(v: &str) -> u64 {
    let (n, unit) = v.split_at(v.len() - 1);
    let scale = match unit {
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return v.parse().unwrap(),
    };
    n.parse::<u64>().unwrap() * scale
}

#[test]
fn the_firewall_caps_connections_where_nowd_does() {
    let nft = repo_file("packer/files/etc/nftables.conf");
    let caps: Vec<usize> = nft
        .lines()
        .filter(|l| l.contains("tcp dport 80") && l.contains("ct count over"))
        .map(|l| {
            l.split("ct count over ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(caps, [limits::MAX_CONNECTIONS], "nftables.conf: {caps:?}");
}

#[test]
fn the_units_descriptors_fit_the_cap_exactly() {
    let nofile: u64 = unit_value("LimitNOFILE").parse().unwrap();
    assert_eq!(
        nofile,
        2 * limits::MAX_CONNECTIONS as u64 + limits::SPARE_DESCRIPTORS,
        "LimitNOFILE= is two per connection and the spare"
    );
    assert_eq!(limits::max_connections(nofile), limits::MAX_CONNECTIONS);
}

#[test]
fn the_units_tasks_cover_a_thread_per_connection_and_nowds_own() {
    let tasks: usize = unit_value("TasksMax").parse().unwrap();
    // main, accept, the pool's idle threads (4), and slack
    assert!(
        tasks >= limits::MAX_CONNECTIONS + 8,
        "TasksMax={tasks} for {} connections",
        limits::MAX_CONNECTIONS
    );
}

/// The figures `make capacity` measured (bench/capacity.py).
fn capacity() -> serde_json::Value {
    serde_json::from_str(&repo_file("bench/capacity.json")).expect("bench/capacity.json is JSON")
}

#[test]
fn the_capacity_figures_were_measured_at_todays_cap_and_bounds() {
    let measured = capacity();
    assert_eq!(
        measured["max_connections"].as_u64(),
        Some(limits::MAX_CONNECTIONS as u64),
        "bench/capacity.json was measured at another cap: run make capacity"
    );
    let bounds = &measured["unit_bounds"];
    assert_eq!(
        bounds["MemoryMax"].as_str(),
        Some(unit_value("MemoryMax").as_str())
    );
    assert_eq!(bounds["TasksMax"].to_string(), unit_value("TasksMax"));
    assert_eq!(bounds["LimitNOFILE"].to_string(), unit_value("LimitNOFILE"));
    // The worst case covers both idle figures and the socket buffers of a pipelining client.
    let idle = measured["stalled"]["kib_per_connection"]["total"]
        .as_f64()
        .unwrap();
    let image = measured["image"]["kib_per_connection"].as_f64().unwrap();
    let sockets = measured["pipelining"]["kib_per_connection"]["sock"]
        .as_f64()
        .unwrap();
    let worst = measured["worst_kib_per_connection"].as_f64().unwrap();
    assert!(worst >= idle.max(image) + sockets, "{measured:#}");
}

#[test]
fn the_units_memory_holds_the_cap_at_the_measured_cost_and_the_heap_cap() {
    let memory_max = bytes(&unit_value("MemoryMax"));
    assert_eq!(unit_value("MemorySwapMax"), "0");
    let measured = capacity();
    let worst_kib = measured["worst_kib_per_connection"]
        .as_u64()
        .expect("bench/capacity.json: worst_kib_per_connection, a whole number of KiB");
    let needed = limits::MAX_CONNECTIONS as u64 * worst_kib * 1024;
    assert!(
        needed < memory_max,
        "{} connections x {worst_kib} KiB = {} MiB, over MemoryMax",
        limits::MAX_CONNECTIONS,
        needed >> 20
    );
    assert!(
        (alloc::HEAP_LIMIT as u64) < memory_max,
        "the heap cap must end a runaway first"
    );
    // A t3.micro has 1 GiB: the OS keeps at least 384 MiB of it.
    assert!(
        memory_max <= (1024 - 384) << 20,
        "MemoryMax leaves the OS too little"
    );
    // And the target of the design: at least 8,000 connections per instance.
    const { assert!(limits::MAX_CONNECTIONS >= 8000) };
}
