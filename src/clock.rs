//! The clock: the time we serve, and the kernel's own view of how good it is.

use std::io;
use time::OffsetDateTime;
use time::macros::format_description;

/// RFC 3339 in UTC with microseconds, e.g. `2026-11-21T22:49:22.123456Z`.
const RFC3339_MICROS: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// One reading of the system clock.
pub struct Now {
    pub rfc3339: String,
    pub unix_ns: i128,
}

/// Reads the system clock (CLOCK_REALTIME, through the vDSO: no system call).
/// Everything but the microseconds changes once a second, so the formatted
/// second and the HTTP `Date` are kept and reused until it turns.
#[derive(Default)]
pub struct Clock {
    second: Option<i64>,
    /// `2026-11-21T22:49:22.`
    prefix: String,
    http_date: String,
}

impl Clock {
    pub fn now(&mut self) -> Now {
        let t = OffsetDateTime::now_utc();
        self.turn_to(t);
        let mut rfc3339 = String::with_capacity(self.prefix.len() + 7);
        rfc3339.push_str(&self.prefix);
        let micros = t.microsecond();
        for digit in [100_000, 10_000, 1_000, 100, 10, 1] {
            rfc3339.push(char::from(b'0' + (micros / digit % 10) as u8));
        }
        rfc3339.push('Z');
        Now {
            rfc3339,
            unix_ns: t.unix_timestamp_nanos(),
        }
    }

    /// The current time as an HTTP `Date` value.
    pub fn http_date(&mut self) -> &str {
        self.turn_to(OffsetDateTime::now_utc());
        &self.http_date
    }

    fn turn_to(&mut self, t: OffsetDateTime) {
        let second = t.unix_timestamp();
        if self.second == Some(second) {
            return;
        }
        let whole = t.replace_nanosecond(0).unwrap_or(t);
        // Formatting a valid UTC instant with a fixed description cannot fail.
        self.prefix = whole.format(RFC3339_MICROS).unwrap_or_default();
        self.prefix.truncate("2026-11-21T22:49:22.".len());
        self.http_date = httpdate::fmt_http_date(whole.into());
        self.second = Some(second);
    }
}

/// What the kernel says about its clock discipline (adjtimex(2), read-only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelClock {
    /// STA_UNSYNC is clear: a time daemon (chrony) is steering the clock.
    pub synchronized: bool,
    /// Upper bound of the clock's error, microseconds (grows by 500 ppm while unsteered).
    pub max_error_us: i64,
    /// Estimated error, microseconds.
    pub est_error_us: i64,
}

/// Asks the kernel for its clock status without changing anything: `modes = 0`
/// makes adjtimex(2) a pure read, which needs no privilege.
pub fn kernel_clock() -> io::Result<KernelClock> {
    // SAFETY: timex is plain data; all-zero is valid and means "read only".
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: tx is a valid, writable timex for the duration of the call.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(KernelClock {
        synchronized: state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0,
        max_error_us: tx.maxerror as i64,
        est_error_us: tx.esterror as i64,
    })
}

/// Is this clock good enough to serve? `Ok(reason)` or `Err(reason)`, one line each.
/// Kept apart from the system call so the decision is tested with any kernel values.
pub fn judge(clock: &io::Result<KernelClock>, max_error_us: i64) -> Result<String, String> {
    match clock {
        Err(e) => Err(format!("kernel clock status unavailable: {e}")),
        Ok(c) if !c.synchronized => Err(format!(
            "clock not synchronized (kernel reports STA_UNSYNC; max error {} us)",
            c.max_error_us
        )),
        Ok(c) if c.max_error_us >= max_error_us => Err(format!(
            "clock max error {} us is not under the limit of {} us",
            c.max_error_us, max_error_us
        )),
        Ok(c) => Ok(format!(
            "clock synchronized, max error {} us (limit {} us), estimated error {} us",
            c.max_error_us, max_error_us, c.est_error_us
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: i64 = 100_000;

    fn kernel(synchronized: bool, max_error_us: i64) -> io::Result<KernelClock> {
        Ok(KernelClock {
            synchronized,
            max_error_us,
            est_error_us: 10,
        })
    }

    #[test]
    fn synchronized_clock_under_the_limit_is_healthy() {
        let reason = judge(&kernel(true, 1_500), LIMIT).unwrap();
        assert!(reason.contains("max error 1500 us"), "{reason}");
    }

    #[test]
    fn unsynchronized_clock_is_unhealthy_whatever_its_error() {
        let reason = judge(&kernel(false, 10), LIMIT).unwrap_err();
        assert!(reason.contains("not synchronized"), "{reason}");
    }

    #[test]
    fn max_error_at_or_over_the_limit_is_unhealthy() {
        assert!(judge(&kernel(true, LIMIT - 1), LIMIT).is_ok());
        let reason = judge(&kernel(true, LIMIT), LIMIT).unwrap_err();
        assert!(reason.contains("100000 us"), "{reason}");
    }

    #[test]
    fn refused_status_call_is_unhealthy_and_says_why() {
        let refused = Err(io::Error::from_raw_os_error(libc::EPERM));
        let reason = judge(&refused, LIMIT).unwrap_err();
        assert!(
            reason.starts_with("kernel clock status unavailable"),
            "{reason}"
        );
    }

    #[test]
    fn cached_formatting_matches_the_time_crate_every_time() {
        let mut clock = Clock::default();
        let mut seconds = std::collections::HashSet::new();
        let start = std::time::Instant::now();
        // Long enough to cross at least one second boundary.
        while start.elapsed() < std::time::Duration::from_millis(1100) {
            let n = clock.now();
            let exact = OffsetDateTime::from_unix_timestamp_nanos(n.unix_ns).unwrap();
            assert_eq!(n.rfc3339, exact.format(RFC3339_MICROS).unwrap());
            let date = httpdate::parse_http_date(clock.http_date()).unwrap();
            let after = std::time::SystemTime::now();
            assert!(date <= after && after.duration_since(date).unwrap().as_secs() < 2);
            seconds.insert(exact.unix_timestamp());
        }
        assert!(seconds.len() >= 2, "crossed a second boundary");
    }

    #[test]
    fn reading_the_kernel_clock_does_not_need_privilege() {
        // Either a status or a clear refusal (seccomp); never a panic.
        match kernel_clock() {
            Ok(c) => assert!(c.max_error_us >= 0),
            Err(e) => assert!(e.raw_os_error().is_some()),
        }
    }
}
