//! The fork's request reading, fed what one client sends before it closes.
//!
//! Beyond "no panic, no hang", what the connection wrote back must be a run
//! of well-formed HTTP/1.x answers (a parser of its own reads them): one
//! `200` for each request it handed to the application, in order, then at
//! most one error answer (4xx or 5xx), after which it read nothing more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiny_http::Method;

fuzz_target!(|input: &[u8]| {
    let (methods, answer) = tiny_http::fuzz_serve(input);
    let codes = answers(&answer, &methods);
    let (served, rest) = codes.split_at(codes.len().min(methods.len()));
    assert_eq!(
        served.len(),
        methods.len(),
        "a request read got no answer: {codes:?}"
    );
    assert!(
        served.iter().all(|&c| c == 200),
        "answers to requests read: {codes:?}"
    );
    match rest {
        [] => {}
        [error] => assert!(
            (400..600).contains(error),
            "the answer after the last request: {error}"
        ),
        more => panic!("answers after the last request read: {more:?}"),
    }
});

/// The status codes of the final answers in `bytes` (interim `1xx` left out).
/// The first `methods.len()` answers are to those requests (no body to `HEAD`).
fn answers(mut bytes: &[u8], methods: &[Method]) -> Vec<u16> {
    let mut codes = Vec::new();
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(bytes) {
            Ok(httparse::Status::Complete(head)) => head,
            other => panic!(
                "not an HTTP answer ({other:?}): {:?}",
                String::from_utf8_lossy(bytes)
            ),
        };
        assert!(
            matches!(response.version, Some(0 | 1)),
            "answers are HTTP/1.x"
        );
        let code = response.code.expect("a status code");
        let length = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("Content-Length"))
            .map(|h| {
                std::str::from_utf8(h.value)
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            });
        assert!(
            !response
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("Transfer-Encoding")),
            "answers here have a known length"
        );
        let head_request = methods.get(codes.len()) == Some(&Method::Head);
        let body = match code {
            100..=199 | 204 | 304 => 0,
            _ if head_request => 0,
            _ => length.expect("Content-Length on an answer with a body"),
        };
        assert!(
            bytes.len() >= head + body,
            "an answer cut short: {:?}",
            String::from_utf8_lossy(bytes)
        );
        bytes = &bytes[head + body..];
        if code >= 200 {
            codes.push(code);
        }
    }
    codes
}
