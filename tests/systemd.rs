//! The sd_notify messages systemd relies on (Type=notify, WatchdogSec=).

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn next_message(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("a message before the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn it_reports_ready_then_feeds_the_watchdog_then_says_it_is_stopping() {
    let dir = std::env::temp_dir().join(format!("nowd-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();

    let addr = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["--listen", &addr, "--log-level", "warn"])
        .args(["--time-reference", &unanswered_udp_port().to_string()])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "3000000")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();

    assert_eq!(next_message(&socket), "READY=1");
    let ready = started.elapsed();
    // READY=1 means listening: a request right now is answered.
    assert_eq!(get(addr.parse().unwrap(), "/now").status, 200);
    for _ in 0..2 {
        assert_eq!(next_message(&socket), "WATCHDOG=1");
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(next_message(&socket), "STOPPING=1");
    assert!(child.wait().unwrap().success());
    eprintln!("READY=1 {ready:?} after spawn");
    let _ = std::fs::remove_dir_all(&dir);
}
