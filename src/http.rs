//! The HTTP answers: which request gets which status, headers and body.

use crate::clock::{self, Clock, KernelClock};
use crate::health::Snapshot;
use crate::instance;
use crate::page;
use crate::reference::Verdict;
use std::io::{self, Write};
use tiny_http::{HTTPVersion, Method, Request};

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
    /// Set where the answer depends on a request header (`Accept` on /now),
    /// so that a cache keeps the variants apart (RFC 9110 12.5.5).
    pub vary: Option<&'static str>,
    /// Further header lines, each ending in CRLF (the page's security headers).
    pub headers: &'static str,
}

impl Answer {
    fn text(status: u16, body: String) -> Answer {
        Answer {
            status,
            content_type: TEXT,
            body,
            allow: None,
            vary: None,
            headers: "",
        }
    }
}

/// The endpoints nowd serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Page,
    Now,
    Healthz,
}

/// Maps a request target to a route; the query string is ignored.
pub fn route(url: &str) -> Option<Route> {
    match url.split_once('?').map_or(url, |(path, _)| path) {
        "/" => Some(Route::Page),
        "/now" => Some(Route::Now),
        "/healthz" => Some(Route::Healthz),
        _ => None,
    }
}

/// Builds the answer for one request. The clock is read here, as late as
/// possible: nothing but a few bytes of headers stand between it and the socket.
pub fn answer(
    method: &Method,
    url: &str,
    wants_json: bool,
    clock: &mut Clock,
    health: &Snapshot<'_>,
) -> Answer {
    let Some(route) = route(url) else {
        return Answer::text(
            404,
            "not found: nowd serves GET /, GET /now and GET /healthz\n".into(),
        );
    };
    if !matches!(method, Method::Get | Method::Head) {
        return Answer {
            allow: Some("GET, HEAD"),
            ..Answer::text(405, "method not allowed: use GET or HEAD\n".into())
        };
    }
    match route {
        Route::Healthz => match health.judge() {
            Ok(reason) => Answer::text(200, format!("ok: {reason}\n")),
            Err(reason) => Answer::text(503, format!("{reason}\n")),
        },
        Route::Now if wants_json => {
            let kernel = clock::kernel_clock().ok();
            let now = clock.now();
            Answer {
                status: 200,
                content_type: JSON,
                body: now_json(&now, kernel, &health.reference()),
                allow: None,
                vary: Some("Accept"),
                headers: "",
            }
        }
        Route::Now => Answer {
            vary: Some("Accept"),
            ..Answer::text(200, clock.now().rfc3339 + "\n")
        },
        Route::Page => Answer {
            content_type: page::CONTENT_TYPE,
            headers: page::HEADERS,
            ..Answer::text(
                200,
                page::html(
                    &clock.now(),
                    clock::kernel_clock().ok(),
                    &health.reference(),
                ),
            )
        },
    }
}

/// `{"now":"…","unix_ns":…,"clock":{…},"reference":{…}}`; `clock` is null
/// where the kernel refused; `reference` is nowd's own measurement, or why
/// there is none.
pub fn now_json(now: &clock::Now, kernel: Option<KernelClock>, reference: &Verdict) -> String {
    let clock = match kernel {
        Some(k) => format!(
            r#"{{"synchronized":{},"max_error_us":{},"est_error_us":{}}}"#,
            k.synchronized, k.max_error_us, k.est_error_us
        ),
        None => "null".into(),
    };
    let reference = match reference {
        Verdict::Measured {
            offset_us,
            error_bound_us,
            age_ms,
        } => format!(
            r#"{{"offset_us":{offset_us},"error_bound_us":{error_bound_us},"age_ms":{age_ms}}}"#
        ),
        // Built by nowd from fixed words, addresses and errno texts: no quotes.
        Verdict::Unknown(why) => format!(r#"{{"unknown":"{}"}}"#, why.replace('"', "'")),
    };
    format!(
        r#"{{"now":"{}","unix_ns":{},"clock":{},"reference":{}}}"#,
        now.rfc3339, now.unix_ns, clock, reference
    ) + "\n"
}

/// True when the client's `Accept` prefers JSON to text (RFC 9110 12.5.1).
fn wants_json(request: &Request) -> bool {
    let accept = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Accept"))
        .map(|h| h.value.as_str());
    prefers_json(accept)
}

/// Each type gets the q-value of the most specific range that matches it
/// (`application/json` over `application/*` over `*/*`); JSON only when its
/// q is higher than text's. Ties, no `Accept`, and an `Accept` that neither
/// matches go to text, the default: RFC 9110 lets a server disregard
/// `Accept` rather than answer 406, and a clock is more use than an error.
pub fn prefers_json<'a>(accept: impl Iterator<Item = &'a str>) -> bool {
    // (specificity, q) of the best match so far, for text and for JSON
    let (mut text, mut json) = ((0, 0u16), (0, 0u16));
    for range in accept.flat_map(|v| v.split(',')) {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = Some(1000);
        for param in parts {
            if let Some((name, value)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                q = qvalue(value.trim());
            }
        }
        let Some(q) = q else { continue }; // a malformed q: the range is ignored
        let specificity = |full: &str, family: &str| match media.as_str() {
            m if m == full => 3,
            m if m == family => 2,
            "*/*" => 1,
            _ => 0,
        };
        for (best, s) in [
            (&mut text, specificity("text/plain", "text/*")),
            (&mut json, specificity(JSON, "application/*")),
        ] {
            if s > best.0 {
                *best = (s, q);
            }
        }
    }
    json.1 > text.1
}

/// RFC 9110 12.4.2: `0`, `1`, `0.5`, `0.125`, `1.000`, in thousandths; else None.
fn qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac),
        "1" if frac == 0 => Some(1000),
        _ => None,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Answers requests, writing status line, headers and body of each in one
/// piece (tiny_http's `Response` builds and allocates every header apart).
pub struct Responder {
    clock: Clock,
    /// Sent as `Nowd-Instance:` with every answer (see `instance`).
    instance: Option<String>,
    /// Reused from one answer to the next.
    buf: Vec<u8>,
}

impl Responder {
    pub fn new() -> Responder {
        Responder {
            clock: Clock::default(),
            instance: None,
            buf: Vec::with_capacity(512),
        }
    }

    pub fn with_instance(self, instance: Option<String>) -> Responder {
        Responder { instance, ..self }
    }

    /// Answers one request; /healthz and the JSON answer read `health`.
    pub fn respond(&mut self, request: Request, health: Snapshot<'_>) -> io::Result<u16> {
        let a = answer(
            request.method(),
            request.url(),
            wants_json(&request),
            &mut self.clock,
            &health,
        );
        let buf = &mut self.buf;
        buf.clear();
        // Writing to a Vec cannot fail. No version in Server: it would only
        // help an attacker choose an exploit.
        let _ = write!(
            buf,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nDate: {}\r\nServer: nowd\r\n",
            a.status,
            reason(a.status),
            a.content_type,
            a.body.len(),
            self.clock.http_date()
        );
        if let Some(id) = &self.instance {
            let _ = write!(buf, "{}: {id}\r\n", instance::HEADER);
        }
        if let Some(allow) = a.allow {
            let _ = write!(buf, "Allow: {allow}\r\n");
        }
        if let Some(vary) = a.vary {
            let _ = write!(buf, "Vary: {vary}\r\n");
        }
        buf.extend_from_slice(a.headers.as_bytes());
        if request.is_last_on_connection() {
            buf.extend_from_slice(b"Connection: close\r\n");
        } else if *request.http_version() == HTTPVersion(1, 0) {
            buf.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        buf.extend_from_slice(b"\r\n");
        if *request.method() != Method::Head {
            buf.extend_from_slice(a.body.as_bytes());
        }
        let mut writer = request.into_writer();
        writer.write_all(buf)?;
        writer.flush()?;
        Ok(a.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;
    use crate::reference::Reference;

    fn health() -> Health {
        Health::new(100_000, Reference::new(([127, 0, 0, 1], 9).into()))
    }

    #[test]
    fn routes_ignore_the_query_string() {
        assert_eq!(route("/now"), Some(Route::Now));
        assert_eq!(route("/now?tz=utc"), Some(Route::Now));
        assert_eq!(route("/healthz"), Some(Route::Healthz));
        assert_eq!(route("/now/"), None);
        assert_eq!(route("/"), Some(Route::Page));
        assert_eq!(route("/?from=bookmark"), Some(Route::Page));
        assert_eq!(route("//"), None);
        assert_eq!(route("/index.html"), None);
    }

    #[test]
    fn other_methods_get_405_with_allow() {
        let a = answer(
            &Method::Post,
            "/now",
            false,
            &mut Clock::default(),
            &health().snapshot(),
        );
        assert_eq!((a.status, a.allow), (405, Some("GET, HEAD")));
    }

    #[test]
    fn unknown_paths_get_404_even_with_other_methods() {
        let a = answer(
            &Method::Delete,
            "/admin",
            false,
            &mut Clock::default(),
            &health().snapshot(),
        );
        assert_eq!(a.status, 404);
    }

    #[test]
    fn accept_is_a_list_with_q_values() {
        let json = |v: &str| prefers_json(std::iter::once(v));
        assert!(json("application/json"));
        assert!(json("text/html, application/json"));
        assert!(json("application/*"));
        assert!(json("text/plain;q=0.5, application/json"));
        assert!(json("*/*;q=0.1, application/json;q=0.2"));
        assert!(!json("application/json;q=0"));
        assert!(!json("application/json;q=0, */*"));
        assert!(!json("*/*"));
        assert!(!json("text/plain, application/json"));
        assert!(!json("application/json;q=0.5, text/*"));
        assert!(!json("application/json;q=2"), "a malformed q is ignored");
        assert!(!json("application/json;q=0.0001"));
        assert!(!json("application/jsonx"));
        assert!(!json(""));
        assert!(!prefers_json(std::iter::empty()));
        assert!(prefers_json(
            ["text/plain;q=0.1", "application/json"].into_iter()
        ));
    }

    #[test]
    fn json_has_null_clock_when_the_kernel_refuses() {
        let now = clock::Now {
            rfc3339: "2026-11-21T22:49:22.123456Z".into(),
            unix_ns: 1,
        };
        let silent = Verdict::Unknown("no answer yet (reference 169.254.169.123:123)".into());
        assert_eq!(
            now_json(&now, None, &silent),
            "{\"now\":\"2026-11-21T22:49:22.123456Z\",\"unix_ns\":1,\"clock\":null,\
             \"reference\":{\"unknown\":\"no answer yet (reference 169.254.169.123:123)\"}}\n"
        );
    }
}
