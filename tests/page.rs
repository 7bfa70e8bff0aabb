//! The page for people on `GET /`, against the real binary: its headers, its
//! size, its policy tied to the inline script and style it carries, and the
//! server's time rendered into it. tests/browser/ runs it in Chromium.

mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::io::{BufReader, Read, Write};

const MAX_PAGE_BYTES: usize = 16 * 1024;

/// `'sha256-…'` of a script or style, as CSP names it (RFC 4648 base64).
fn csp_hash(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let digest = Sha256::digest(text.as_bytes());
    let mut b64 = String::new();
    for chunk in digest.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    format!("'sha256-{b64}'")
}

/// The text between `open` and `close`, once: the page has one of each.
fn between<'a>(body: &'a str, open: &str, close: &str) -> &'a str {
    assert_eq!(body.matches(open).count(), 1, "one {open} in the page");
    let start = body.find(open).unwrap() + open.len();
    let len = body[start..].find(close).expect("closed");
    &body[start..start + len]
}

#[test]
fn csp_hash_is_rfc_4648_base64_of_sha256() {
    // RFC 6234's test vector "abc", base64 by RFC 4648.
    assert_eq!(
        csp_hash("abc"),
        "'sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0='"
    );
}

#[test]
fn page_is_html_with_strict_security_headers() {
    let nowd = Nowd::start();
    let r = get(nowd.addr, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        r.header("Cache-Control"),
        Some("no-store"),
        "the time is live"
    );
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
    assert_eq!(r.header("Server"), Some("nowd"));
    assert_eq!(r.header("Vary"), None, "one page for every Accept");
    let script = between(&r.body, "<script>", "</script>");
    let style = between(&r.body, "<style>", "</style>");
    assert_eq!(
        r.header("Content-Security-Policy").unwrap(),
        format!(
            "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            csp_hash(script),
            csp_hash(style)
        ),
        "the policy, its hashes those of the inline script and style as served"
    );
}

#[test]
fn page_is_small_and_self_contained() {
    let nowd = Nowd::start();
    let r = get(nowd.addr, "/");
    let len: usize = r.header("Content-Length").unwrap().parse().unwrap();
    assert_eq!(len, r.body.len());
    assert!(len <= MAX_PAGE_BYTES, "the page is {len} bytes");
    assert!(!r.body.contains("{{"), "every placeholder is filled");
    for outside in ["://", "src=", "href=", "@import", "url("] {
        assert!(
            !r.body.contains(outside),
            "the page loads nothing: {outside}"
        );
    }
    // For phones and screen readers.
    assert!(r.body.starts_with("<!doctype html>\n<html lang=\"en\">"));
    assert!(
        r.body
            .contains(r#"<meta name="viewport" content="width=device-width"#)
    );
    assert!(
        r.body
            .contains(r#"<p id="offset" class="offset" aria-live="polite">"#)
    );
    assert!(r.body.contains("<main") && r.body.contains("<h1>"));
}

#[test]
fn without_javascript_the_page_shows_the_servers_time_at_serving() {
    let nowd = Nowd::start();
    let sent = now_micros();
    let r = get(nowd.addr, "/");
    let received = now_micros();
    let iso = between(&r.body, r#"<time id="clock" datetime=""#, "\"");
    let served = rfc3339_micros(iso);
    assert!(
        sent <= served && served <= received,
        "served {served} outside [{sent}, {received}]"
    );
    // What a person reads is that same instant, in UTC.
    let shown = between(&r.body, &format!("datetime=\"{iso}\">"), "</time>");
    assert_eq!(shown, &iso[11..19], "HH:MM:SS of {iso}");
    let ms: i128 = between(&r.body, r#"data-served-ms=""#, "\"")
        .parse()
        .unwrap();
    assert_eq!(ms, served / 1000);
    assert!(r.body.contains(r#"<p id="zone">UTC, "#));
}

#[test]
fn without_a_reference_the_page_says_the_error_bound_is_unknown() {
    let nowd = Nowd::start(); // its reference is a port nobody answers on
    let r = get(nowd.addr, "/");
    let bound = between(&r.body, r#"<dd id="bound">"#, "</dd>");
    assert!(bound.starts_with("unknown: no "), "{bound}");
    let state = between(&r.body, r#"<dd id="state">"#, "</dd>");
    assert!(
        ["synchronised", "not synchronised"].contains(&state),
        "{state}"
    );
}

#[test]
fn head_of_the_page_has_its_headers_and_no_body() {
    let nowd = Nowd::start();
    let get = get(nowd.addr, "/");
    let mut s = connect(nowd.addr).unwrap();
    write!(
        s,
        "HEAD / HTTP/1.1\r\nHost: nowd\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let head = read_response(&mut reader, true).unwrap();
    assert_eq!(head.status, 200);
    for name in [
        "Content-Type",
        "Content-Length",
        "Cache-Control",
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Referrer-Policy",
    ] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "HEAD / sent a body: {} bytes", rest.len());
}

#[test]
fn other_methods_on_the_page_get_405_and_near_paths_404() {
    let nowd = Nowd::start();
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let req = format!(
            "{method} / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let r = raw(nowd.addr, req.as_bytes(), false).unwrap();
        assert_eq!(r.status, 405, "{method} /");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
        assert_eq!(r.header("Content-Security-Policy"), None, "{method} /");
    }
    for path in ["//", "/index.html", "/clock.js", "/%2F"] {
        let r = get(nowd.addr, path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("Content-Security-Policy"), None, "{path}");
    }
    assert_eq!(
        get(nowd.addr, "/?utm=x").status,
        200,
        "the query is ignored"
    );
}
