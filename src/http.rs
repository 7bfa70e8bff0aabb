//! The HTTP answers: which request gets which status, headers and body.

use crate::clock::{self, KernelClock};
use std::io;
use tiny_http::{Header, Method, Request, Response};

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// What to send back, before it becomes bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Set on 405 answers, as RFC 9110 requires.
    pub allow: Option<&'static str>,
}

impl Answer {
    fn text(status: u16, body: String) -> Answer {
        Answer {
            status,
            content_type: TEXT,
            body,
            allow: None,
        }
    }
}

/// The endpoints nowd serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Now,
    Healthz,
}

/// Maps a request target to a route; the query string is ignored.
pub fn route(url: &str) -> Option<Route> {
    match url.split_once('?').map_or(url, |(path, _)| path) {
        "/now" => Some(Route::Now),
        "/healthz" => Some(Route::Healthz),
        _ => None,
    }
}

/// Builds the answer for one request. The clock is read here, as late as
/// possible: nothing but header formatting stands between it and the socket.
pub fn answer(method: &Method, url: &str, wants_json: bool, max_error_us: i64) -> Answer {
    let Some(route) = route(url) else {
        return Answer::text(
            404,
            "not found: nowd serves GET /now and GET /healthz\n".into(),
        );
    };
    if !matches!(method, Method::Get | Method::Head) {
        return Answer {
            allow: Some("GET, HEAD"),
            ..Answer::text(405, "method not allowed: use GET or HEAD\n".into())
        };
    }
    match route {
        Route::Healthz => match clock::judge(&clock::kernel_clock(), max_error_us) {
            Ok(reason) => Answer::text(200, format!("ok: {reason}\n")),
            Err(reason) => Answer::text(503, format!("{reason}\n")),
        },
        Route::Now if wants_json => {
            let kernel = clock::kernel_clock().ok();
            let now = clock::now();
            Answer {
                status: 200,
                content_type: JSON,
                body: now_json(&now, kernel),
                allow: None,
            }
        }
        Route::Now => Answer::text(200, format!("{}\n", clock::now().rfc3339)),
    }
}

/// `{"now":"…","unix_ns":…,"clock":{…}}`; `clock` is null where the kernel refused.
pub fn now_json(now: &clock::Now, kernel: Option<KernelClock>) -> String {
    let clock = match kernel {
        Some(k) => format!(
            r#"{{"synchronized":{},"max_error_us":{},"est_error_us":{}}}"#,
            k.synchronized, k.max_error_us, k.est_error_us
        ),
        None => "null".into(),
    };
    format!(
        r#"{{"now":"{}","unix_ns":{},"clock":{}}}"#,
        now.rfc3339, now.unix_ns, clock
    ) + "\n"
}

/// True when the client lists `application/json` in its Accept header.
fn wants_json(request: &Request) -> bool {
    request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Accept") && h.value.as_str().contains(JSON))
}

fn header(name: &str, value: &str) -> Header {
    // Names and values here are ASCII constants or digits: from_bytes cannot fail.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

/// Answers one request. tiny_http drops the body for HEAD and adds
/// Content-Length; Date, Server and Cache-Control are set here.
pub fn respond(request: Request, max_error_us: i64) -> io::Result<u16> {
    let a = answer(
        request.method(),
        request.url(),
        wants_json(&request),
        max_error_us,
    );
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let mut response = Response::from_string(a.body)
        .with_status_code(a.status)
        .with_header(header("Content-Type", a.content_type))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("Date", &date))
        // No version: a Server header that names one only helps an attacker pick exploits.
        .with_header(header("Server", "nowd"));
    if let Some(allow) = a.allow {
        response.add_header(header("Allow", allow));
    }
    let status = a.status;
    request.respond(response).map(|()| status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_ignore_the_query_string() {
        assert_eq!(route("/now"), Some(Route::Now));
        assert_eq!(route("/now?tz=utc"), Some(Route::Now));
        assert_eq!(route("/healthz"), Some(Route::Healthz));
        assert_eq!(route("/now/"), None);
        assert_eq!(route("/"), None);
    }

    #[test]
    fn other_methods_get_405_with_allow() {
        let a = answer(&Method::Post, "/now", false, 100_000);
        assert_eq!((a.status, a.allow), (405, Some("GET, HEAD")));
    }

    #[test]
    fn unknown_paths_get_404_even_with_other_methods() {
        assert_eq!(
            answer(&Method::Delete, "/admin", false, 100_000).status,
            404
        );
    }

    #[test]
    fn json_has_null_clock_when_the_kernel_refuses() {
        let now = clock::Now {
            rfc3339: "2026-11-21T22:49:22.123456Z".into(),
            unix_ns: 1,
        };
        assert_eq!(
            now_json(&now, None),
            "{\"now\":\"2026-11-21T22:49:22.123456Z\",\"unix_ns\":1,\"clock\":null}\n"
        );
    }
}
