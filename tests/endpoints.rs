//! Every endpoint, method, status and header, against the real binary.

mod common;
use common::*;
use std::io::{BufReader, Write};
use std::process::Command;
use std::time::{Duration, Instant};

fn assert_common_headers(r: &Response) {
    let date = r.header("Date").expect("Date header");
    let date = httpdate::parse_http_date(date).expect("Date is an HTTP date");
    let skew = date.elapsed().unwrap_or_default();
    assert!(skew < Duration::from_secs(2), "Date is {skew:?} old");
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    assert!(
        r.header("Content-Length").is_some(),
        "Content-Length on every answer"
    );
    assert_eq!(r.header("Server"), Some("nowd"), "Server names no version");
}

#[test]
fn now_is_rfc3339_utc_with_microseconds_and_a_newline() {
    let nowd = Nowd::start();
    let r = get(nowd.addr, "/now");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_common_headers(&r);
    let body = r.body.strip_suffix('\n').expect("ends in a newline");
    assert_eq!(body.len(), "2026-11-21T22:49:22.123456Z".len(), "{body:?}");
    assert!(body.ends_with('Z'));
    rfc3339_micros(body);
}

#[test]
fn ten_thousand_answers_each_fall_between_send_and_receive() {
    let nowd = Nowd::start();
    let stream = connect(nowd.addr).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for i in 0..10_000 {
        let sent = now_micros();
        writer
            .write_all(b"GET /now HTTP/1.1\r\nHost: nowd\r\n\r\n")
            .unwrap();
        let r = read_response(&mut reader, false).unwrap();
        let received = now_micros();
        let served = rfc3339_micros(r.body.trim_end());
        assert!(
            sent <= served && served <= received,
            "answer {i}: served {served} outside [{sent}, {received}]"
        );
    }
}

#[test]
fn json_answer_parses_and_carries_the_kernel_clock() {
    let nowd = Nowd::start();
    let sent = now_micros();
    let r = raw(
        nowd.addr,
        b"GET /now HTTP/1.1\r\nHost: nowd\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        false,
    )
    .unwrap();
    let received = now_micros();
    assert_eq!(
        (r.status, r.header("Content-Type")),
        (200, Some("application/json"))
    );
    assert_common_headers(&r);
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("valid JSON");
    let now = rfc3339_micros(v["now"].as_str().unwrap());
    assert!(sent <= now && now <= received);
    let unix_ns = v["unix_ns"].as_i64().expect("unix_ns is an integer") as i128;
    assert_eq!(unix_ns / 1000, now, "unix_ns and now are the same instant");
    let clock = &v["clock"];
    assert!(
        clock.is_null() || clock["synchronized"].is_boolean(),
        "{clock}"
    );
    if !clock.is_null() {
        assert!(
            clock["max_error_us"].is_i64() && clock["est_error_us"].is_i64(),
            "{clock}"
        );
    }
}

#[test]
fn accept_is_negotiated_with_q_values_and_now_varies_on_it() {
    let nowd = Nowd::start();
    for (accept, expect) in [
        ("", "text/plain; charset=utf-8"),
        ("Accept: */*\r\n", "text/plain; charset=utf-8"),
        ("Accept: application/json\r\n", "application/json"),
        (
            "Accept: application/json;q=0\r\n",
            "text/plain; charset=utf-8",
        ),
        (
            "Accept: text/plain;q=0.4, application/json;q=0.6\r\n",
            "application/json",
        ),
        (
            "Accept: application/json;q=0.6, text/plain\r\n",
            "text/plain; charset=utf-8",
        ),
        (
            "Accept: text/html\r\nAccept: application/*\r\n",
            "application/json",
        ),
    ] {
        let request =
            format!("GET /now HTTP/1.1\r\nHost: nowd\r\n{accept}Connection: close\r\n\r\n");
        let r = raw(nowd.addr, request.as_bytes(), false).unwrap();
        assert_eq!(
            (r.status, r.header("Content-Type")),
            (200, Some(expect)),
            "{accept:?}"
        );
        assert_eq!(r.header("Vary"), Some("Accept"), "{accept:?}");
        if expect == "application/json" {
            serde_json::from_str::<serde_json::Value>(&r.body).expect("valid JSON");
        }
    }
    // /healthz does not depend on Accept.
    assert_eq!(get(nowd.addr, "/healthz").header("Vary"), None);
}

#[test]
fn healthz_agrees_with_the_clock_fields_in_one_line() {
    let nowd = Nowd::start();
    let r = get(nowd.addr, "/healthz");
    assert_common_headers(&r);
    // Build machines often run unsynchronised clocks: accept either answer,
    // but it must match what the kernel says (the decision itself is unit-tested).
    let v = get_json(nowd.addr);
    let synced = v["clock"]["synchronized"].as_bool() == Some(true)
        && v["reference"]["error_bound_us"]
            .as_i64()
            .is_some_and(|bound| bound < 100_000);
    assert_eq!(r.status, if synced { 200 } else { 503 }, "{}", r.body);
    assert_eq!(r.body.lines().count(), 1, "{:?}", r.body);
    assert!(r.body.ends_with('\n'));
}

#[test]
fn head_has_the_same_status_and_headers_and_no_body() {
    let nowd = Nowd::start();
    for path in ["/now", "/healthz"] {
        let get = get(nowd.addr, path);
        let mut s = connect(nowd.addr).unwrap();
        write!(
            s,
            "HEAD {path} HTTP/1.1\r\nHost: nowd\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let head = read_response(&mut reader, true).unwrap();
        assert_eq!(head.status, get.status, "{path}");
        assert_eq!(
            head.header("Content-Length"),
            get.header("Content-Length"),
            "{path}"
        );
        assert_eq!(head.header("Content-Type"), get.header("Content-Type"));
        assert_common_headers(&head);
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut rest).unwrap();
        assert!(rest.is_empty(), "HEAD {path} sent a body: {rest:?}");
    }
}

#[test]
fn other_methods_get_405_with_allow() {
    let nowd = Nowd::start();
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
        for path in ["/now", "/healthz"] {
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let r = raw(nowd.addr, req.as_bytes(), false).unwrap();
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.header("Allow"), Some("GET, HEAD"));
            assert!(r.body.contains("GET or HEAD"));
            assert_common_headers(&r);
        }
    }
}

#[test]
fn other_paths_get_404() {
    let nowd = Nowd::start();
    for path in [
        "//",
        "/now/",
        "/NOW",
        "/healthz/x",
        "/../etc/passwd",
        "/now%00",
    ] {
        let r = get(nowd.addr, path);
        assert_eq!(r.status, 404, "{path}");
        assert_common_headers(&r);
    }
    assert_eq!(
        get(nowd.addr, "/now?format=x").status,
        200,
        "the query is ignored"
    );
}

#[test]
fn http_1_0_clients_are_answered_and_closed() {
    let nowd = Nowd::start();
    let r = raw(nowd.addr, b"GET /now HTTP/1.0\r\n\r\n", false).unwrap();
    assert_eq!(r.status, 200);
    rfc3339_micros(r.body.trim_end());
}

#[test]
fn ipv6_listen_address_works() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine: nothing to test");
        return;
    }
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["--listen", &format!("[::1]:{port}")])
        .args(["--time-reference", &unanswered_udp_port().to_string()])
        .spawn()
        .unwrap();
    let addr = format!("[::1]:{port}").parse().unwrap();
    let start = Instant::now();
    let r = loop {
        match try_get(addr, "/now") {
            Ok(r) => break r,
            Err(_) if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("no answer on [::1]: {e}"),
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn sigterm_and_sigint_stop_it_cleanly_within_a_second() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut nowd = Nowd::start();
        // A keep-alive connection in flight must not hold up the stop.
        let _open = connect(nowd.addr).unwrap();
        get(nowd.addr, "/now");
        nowd.signal(sig);
        let (status, took) = nowd.wait_exit(Duration::from_secs(2)).expect("exits");
        assert!(status.success(), "signal {sig}: {status:?}");
        assert!(took < Duration::from_secs(1), "signal {sig}: took {took:?}");
        eprintln!("signal {sig}: exited 0 in {took:?}");
        assert!(
            try_get(nowd.addr, "/now").is_err(),
            "still accepting after stop"
        );
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

#[test]
fn cli_help_and_version_exit_zero() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: nowd") && out.contains("--max-clock-error-ms"));
    let (code, out, _) = run(&["--version"]);
    assert_eq!(
        (code, out.trim()),
        (0, concat!("nowd ", env!("CARGO_PKG_VERSION")))
    );
}

#[test]
fn cli_bad_arguments_exit_2_with_a_clear_message() {
    for (args, says) in [
        (&["--frobnicate"][..], "unknown argument '--frobnicate'"),
        (&["--listen"][..], "--listen needs a value"),
        (&["--listen", "8080"][..], "not an address"),
        (&["--log-level", "chatty"][..], "not one of"),
        (&["--max-clock-error-ms", "ten"][..], "whole number"),
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty(), "{args:?}: nothing on stdout");
        assert!(
            err.starts_with(&format!("nowd: {says}")) || err.contains(says),
            "{args:?}: {err}"
        );
        assert!(err.contains("Usage: nowd"), "{args:?}");
    }
}

#[test]
fn a_port_in_use_is_a_clear_error_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = run(&["--listen", &addr]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[test]
fn the_answer_says_when_the_connection_ends() {
    let nowd = Nowd::start();
    for (request, expect) in [
        (
            &b"GET /now HTTP/1.1\r\nHost: nowd\r\nConnection: close\r\n\r\n"[..],
            Some("close"),
        ),
        (b"GET /now HTTP/1.0\r\n\r\n", Some("close")),
        (
            b"GET /now HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            Some("keep-alive"),
        ),
        (b"GET /now HTTP/1.1\r\nHost: nowd\r\n\r\n", None),
    ] {
        let mut s = connect(nowd.addr).unwrap();
        s.write_all(request).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let r = read_response(&mut reader, false).unwrap();
        assert_eq!(
            r.header("Connection"),
            expect,
            "{}",
            String::from_utf8_lossy(request)
        );
        // What the header says is what happens: closed, or open for another request.
        s.write_all(b"GET /now HTTP/1.1\r\nHost: nowd\r\n\r\n").ok();
        let again = read_response(&mut reader, false);
        assert_eq!(
            again.is_ok(),
            expect != Some("close"),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
}

#[test]
fn error_answers_from_the_http_library_name_it_not_and_are_not_cached() {
    let nowd = Nowd::start();
    let r = raw(
        nowd.addr,
        b"GET /now HTTP/1.1\r\nHost: nowd\r\nNo colon here\r\n\r\n",
        false,
    )
    .unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.headers
            .iter()
            .all(|(_, v)| !v.to_ascii_lowercase().contains("tiny")),
        "{r:?}"
    );
    // The library's own answers follow the rules of every answer too.
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    assert!(r.header("Date").is_some() && r.header("Content-Length").is_some());
}
