//! The page for people on `GET /`: the time, ticking, and how far the
//! visitor's own clock is off (measured by `page/clock.js` in the browser
//! against `/now`). Without JavaScript it still shows the server's time at
//! the moment it was served, and the server clock's state.
//!
//! Everything the page needs is inline and pinned by hash in the
//! Content-Security-Policy: one request, nothing from anywhere else.

use crate::clock::{KernelClock, Now};
use crate::reference::Verdict;
use time::OffsetDateTime;
use time::macros::format_description;

pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

const TEMPLATE: &str = include_str!("page/index.html");
const STYLE: &str = include_str!("page/page.css");
const SCRIPT: &str = include_str!("page/clock.js");

/// The policy: nothing but the inline script and style named by their
/// SHA-256 (tests/page.rs recomputes both from the page as served) and
/// fetches back to this origin. No forms, no base, no framing.
macro_rules! policy {
    () => {
        "default-src 'none'; \
         script-src 'sha256-FEHWyIJvm1Gj6GtpfriUnt6EENTixumSqMNiV/MwaSY='; \
         style-src 'sha256-K9a7eAG80ft8xA35AW7qKfm6vVbtdIvMZ+T/4XSZcrI='; \
         connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    };
}

/// Header lines sent with the page only, each ending in CRLF.
pub const HEADERS: &str = concat!(
    "Content-Security-Policy: ",
    policy!(),
    "\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
);

/// The page with the server's time `now` and clock state filled in.
pub fn html(now: &Now, kernel: Option<KernelClock>, reference: &Verdict) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(now.unix_ns)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    // Formatting a valid UTC instant with a fixed description cannot fail.
    let time = t
        .format(format_description!("[hour]:[minute]:[second]"))
        .unwrap_or_default();
    let date = t
        .format(format_description!(
            "[weekday] [day padding:none] [month repr:long] [year]"
        ))
        .unwrap_or_default();
    let mut out = String::with_capacity(TEMPLATE.len() + STYLE.len() + SCRIPT.len() + 256);
    let mut rest = TEMPLATE;
    while let Some((before, after)) = rest.split_once("{{") {
        let (key, after) = after.split_once("}}").unwrap_or((after, ""));
        out.push_str(before);
        match key {
            "style" => out.push_str(STYLE),
            "script" => out.push_str(SCRIPT),
            "served_ms" => out.push_str(&(now.unix_ns / 1_000_000).to_string()),
            "served_iso" => out.push_str(&now.rfc3339),
            "served_time" => out.push_str(&time),
            "served_date" => out.push_str(&date),
            "state" => out.push_str(state(kernel)),
            "bound" => escape_into(&mut out, &bound(reference)),
            // A mistyped placeholder shows; the tests look for "{{".
            _ => out.extend(["{{", key, "}}"]),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The kernel's word on the clock, worded as `clock.js` words it.
fn state(kernel: Option<KernelClock>) -> &'static str {
    match kernel {
        None => "unknown (the kernel did not say)",
        Some(k) if k.synchronized => "synchronised",
        Some(_) => "not synchronised",
    }
}

/// nowd's own measurement of its clock, worded as `clock.js` words it.
fn bound(reference: &Verdict) -> String {
    match reference {
        Verdict::Measured { error_bound_us, .. } => {
            format!("±{} against its time source", micros(*error_bound_us))
        }
        Verdict::Unknown(why) => format!("unknown: {why}"),
    }
}

/// "1.2 ms", "250 ms", "2.01 s", with a no-break space before the unit.
fn micros(us: i64) -> String {
    let us = us.max(0);
    if us < 10_000 {
        let tenths = (us + 50) / 100;
        format!("{}.{}\u{a0}ms", tenths / 10, tenths % 10)
    } else if us < 1_000_000 {
        format!("{}\u{a0}ms", (us + 500) / 1000)
    } else {
        format!("{:.2}\u{a0}s", us as f64 / 1e6)
    }
}

/// The reason text is nowd's own (fixed words, addresses, errno texts), but
/// HTML is HTML.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Now {
        Now {
            rfc3339: "2026-11-21T22:49:22.123456Z".into(),
            unix_ns: 1_795_301_362_123_456_000,
        }
    }

    #[test]
    fn the_served_time_and_state_are_in_the_page() {
        let kernel = KernelClock {
            synchronized: true,
            max_error_us: 1_500,
            est_error_us: 10,
        };
        let measured = Verdict::Measured {
            offset_us: -40,
            error_bound_us: 1_234,
            age_ms: 300,
        };
        let page = html(&now(), Some(kernel), &measured);
        assert!(!page.contains("{{"), "every placeholder is filled");
        assert!(page.contains(r#"datetime="2026-11-21T22:49:22.123456Z">22:49:22</time>"#));
        assert!(page.contains("UTC, Saturday 21 November 2026"));
        assert!(page.contains(r#"data-served-ms="1795301362123""#));
        assert!(page.contains(r#"<dd id="state">synchronised</dd>"#));
        assert!(page.contains("<dd id=\"bound\">±1.2\u{a0}ms against its time source</dd>"));
    }

    #[test]
    fn an_unknown_bound_says_why_in_escaped_html() {
        let page = html(&now(), None, &Verdict::Unknown("no <answer> yet".into()));
        assert!(page.contains("unknown (the kernel did not say)"));
        assert!(page.contains("unknown: no &lt;answer&gt; yet"));
    }

    #[test]
    fn error_bounds_are_worded_with_sensible_digits() {
        assert_eq!(micros(0), "0.0\u{a0}ms");
        assert_eq!(micros(1_250), "1.3\u{a0}ms");
        assert_eq!(micros(9_949), "9.9\u{a0}ms");
        assert_eq!(micros(9_950), "10.0\u{a0}ms");
        assert_eq!(micros(10_000), "10\u{a0}ms");
        assert_eq!(micros(250_400), "250\u{a0}ms");
        assert_eq!(micros(2_010_000), "2.01\u{a0}s");
    }
}
