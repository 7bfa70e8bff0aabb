//! RFC 9112's server requirements and request-smuggling shapes, each sent
//! over a raw socket to the real binary: what nowd answers, and that the
//! connection is closed where the framing cannot be trusted.

mod common;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

/// Sends `request` on a fresh connection; returns the status of every answer
/// read until nowd closes the connection, and whether it did within `within`.
fn statuses(nowd: &Nowd, request: &[u8], within: Duration) -> (Vec<u16>, bool) {
    let mut s = connect(nowd.addr).unwrap();
    s.write_all(request).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false;
            }
            Err(_) => break true, // reset
        }
    };
    let text = String::from_utf8_lossy(&got);
    let codes = text
        .match_indices("HTTP/1.")
        .filter_map(|(i, _)| text[i + 9..].get(..3)?.parse().ok())
        .collect();
    (codes, closed)
}

struct Case {
    shape: &'static str,
    request: &'static [u8],
    answers: &'static [u16],
    closes: bool,
}

const CASES: &[Case] = &[
    Case {
        shape: "HTTP/1.1 without Host",
        request: b"GET /now HTTP/1.1\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "two Host headers",
        request: b"GET /now HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "two different Content-Length values",
        request: b"POST /now HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "Content-Length not a plain number (+5)",
        request: b"POST /now HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "absolute-form target GET http://host/now",
        request: b"GET http://nowd/now HTTP/1.1\r\nHost: nowd\r\nConnection: close\r\n\r\n",
        answers: &[200],
        closes: true,
    },
    Case {
        shape: "bare CR inside a header line",
        request: b"GET /now HTTP/1.1\r\nHost: a\rX-Injected: 1\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "NUL inside a header value",
        request: b"GET /now HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "obs-fold (a header line continued on the next)",
        request: b"GET /now HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "LF-only line endings",
        request: b"GET /now HTTP/1.1\nHost: a\nConnection: close\n\n",
        answers: &[200],
        closes: true,
    },
    Case {
        shape: "HTTP/2 connection preface",
        request: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        answers: &[505],
        closes: true,
    },
    Case {
        shape: "a request line with a fourth field (`GET /now HTTP/1.1 x`)",
        request: b"GET /now HTTP/1.1 x\r\nHost: a\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "a method that is not a token (`:GET`)",
        request: b":GET /now HTTP/1.1\r\nHost: a\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "Content-Length and Transfer-Encoding (CL.TE)",
        request: b"POST /now HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "Transfer-Encoding, a chunked body, then a second request",
        request: b"POST /now HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        answers: &[405],
        closes: true,
    },
    Case {
        shape: "`Transfer-Encoding : chunked` (space before the colon)",
        request: b"POST /now HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "`Transfer-Encoding: xchunked`",
        request: b"POST /now HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "`Transfer-Encoding: chunked, identity` (chunked not last)",
        request: b"POST /now HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "`Transfer-Encoding: gzip, chunked` (a coding nowd lacks)",
        request: b"POST /now HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        answers: &[501],
        closes: true,
    },
    Case {
        shape: "`Transfer-Encoding: chunked, chunked` (chunked twice)",
        request: b"POST /now HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n0\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "`Transfer-Encoding: chunked` on two header lines (chunked twice)",
        request: b"POST /now HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n0\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "Transfer-Encoding in HTTP/1.0",
        request: b"POST /now HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "HTTP/0.9 in the request line (answered in HTTP/1.1)",
        request: b"GET /now HTTP/0.9\r\nHost: a\r\n\r\n",
        answers: &[505],
        closes: true,
    },
    Case {
        shape: "a space after the version (`GET /now HTTP/1.1 `), then a second request",
        request: b"GET /now HTTP/1.1 \r\nHost: a\r\n\r\nGET /now HTTP/1.1\r\nHost: a\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "a tab after the version",
        request: b"GET /now HTTP/1.1\t\r\nHost: a\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "whitespace before the request line, after a first request",
        request: b"GET /now HTTP/1.1\r\nHost: a\r\n\r\n\tGET /now HTTP/1.1\r\nHost: a\r\n\r\n",
        answers: &[200, 400],
        closes: true,
    },
    Case {
        shape: "an empty request target (`GET  HTTP/1.1`)",
        request: b"GET  HTTP/1.1\r\nHost: a\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "a tab in the request target",
        request: b"GET \t/now HTTP/1.1\r\nHost: a\r\n\r\n",
        answers: &[400],
        closes: true,
    },
    Case {
        shape: "a Content-Length past 2^64, then a second request",
        request: b"GET /now HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\nGET /now HTTP/1.1\r\nHost: a\r\n\r\n",
        answers: &[400],
        closes: true,
    },
];

#[test]
fn each_rfc_9112_and_smuggling_shape_gets_its_answer_and_at_most_one() {
    let nowd = Nowd::start();
    let mut wrong = Vec::new();
    eprintln!("| request | nowd answers |\n| --- | --- |");
    for case in CASES {
        let started = Instant::now();
        let (answers, closed) = statuses(&nowd, case.request, Duration::from_secs(2));
        let took = started.elapsed();
        let what = answers
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let close = if closed {
            ", then closes"
        } else {
            ", keeps it open"
        };
        eprintln!(
            "| {} | `{what}`{close} ({} ms) |",
            case.shape,
            took.as_millis()
        );
        if answers != case.answers || closed != case.closes || took > Duration::from_secs(1) {
            wrong.push(format!(
                "{}: {answers:?} closed={closed} in {took:?}",
                case.shape
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(get(nowd.addr, "/now").status, 200, "still serving");
}

#[test]
fn a_header_value_with_cr_lf_is_refused_and_never_written() {
    // The library itself, on a loopback port: nowd writes its own header bytes,
    // but the defect (tiny_http #288) is in what any application may set.
    let injected = "a\r\nSet-Cookie: stolen=1";
    assert!(tiny_http::Header::from_bytes("X-Echo", injected).is_err());
    assert!(
        format!("X-Echo: {injected}")
            .parse::<tiny_http::Header>()
            .is_err()
    );
    assert!(tiny_http::Header::from_bytes("X Echo", "a").is_err());
    assert!(tiny_http::Header::from_bytes("X-Echo", "a\tb").is_ok());

    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    let client = std::thread::spawn(move || {
        raw(
            addr,
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            false,
        )
        .unwrap()
    });
    let request = server.recv().unwrap();
    // Its fields are public: a header can be built by hand, past from_bytes.
    let mut by_hand = tiny_http::Header::from_bytes("X-Echo", "a").unwrap();
    by_hand.value = injected.parse().unwrap();
    let response = tiny_http::Response::from_string("ok").with_header(by_hand);
    request.respond(response).unwrap();
    let r = client.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Set-Cookie"), None, "{:?}", r.headers);
    assert_eq!(r.header("X-Echo"), None, "{:?}", r.headers);
    assert_eq!(r.body, "ok");
}

#[test]
fn a_505_is_empty_as_an_answer_to_head_must_be() {
    // An answer to HEAD ends at its empty line (RFC 9112 6.3): a body after
    // it would be read as the start of the next answer.
    let nowd = Nowd::start();
    let mut s = connect(nowd.addr).unwrap();
    s.write_all(b"HEAD /now HTTP/2.0\r\nHost: a\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got); // what came before a timeout is kept
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 505 "), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
}
