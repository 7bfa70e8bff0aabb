//! The clock: the time we serve, the kernel's own view of how good it is,
//! and the verdict /healthz gives from that and nowd's own measurement.

use crate::reference::Verdict;
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
        // Six digits and Z, and room for the newline of the text answer
        // (http.rs), which would otherwise cost a reallocation.
        let mut rfc3339 = String::with_capacity(self.prefix.len() + 8);
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
/// Healthy takes both: the kernel says a time daemon steers the clock
/// (STA_UNSYNC clear), and nowd's own measurement against the reference
/// bounds the served clock's error under the limit. The kernel's maximum
/// error alone is not enough: it omits the offset chrony is still slewing
/// away (see `reference`). Kept apart from the system calls so the decision
/// is tested with any values.
pub fn judge(
    clock: &io::Result<KernelClock>,
    reference: &Verdict,
    max_error_us: i64,
) -> Result<String, String> {
    // Every problem is named, the kernel's first: one line either way.
    let mut problems = Vec::new();
    match clock {
        Err(e) => problems.push(format!("kernel clock status unavailable: {e}")),
        Ok(c) if !c.synchronized => problems.push(format!(
            "clock not synchronized (kernel reports STA_UNSYNC; max error {} us)",
            c.max_error_us
        )),
        Ok(_) => {}
    }
    match reference {
        Verdict::Unknown(why) => problems.push(format!("clock error unknown: {why}")),
        Verdict::Measured {
            offset_us,
            error_bound_us,
            ..
        } if *error_bound_us >= max_error_us => problems.push(format!(
            "clock error bound {error_bound_us} us is not under the limit of {max_error_us} us \
             (offset from the reference {offset_us} us)"
        )),
        Verdict::Measured { .. } => {}
    }
    match (clock, reference) {
        (
            Ok(kernel),
            Verdict::Measured {
                offset_us,
                error_bound_us,
                ..
            },
        ) if problems.is_empty() => Ok(format!(
            "clock synchronized, error bound {error_bound_us} us (limit {max_error_us} us), \
             offset from the reference {offset_us} us, kernel max error {} us",
            kernel.max_error_us
        )),
        _ => Err(problems.join("; ")),
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

    fn measured(offset_us: i64, error_bound_us: i64) -> Verdict {
        Verdict::Measured {
            offset_us,
            error_bound_us,
            age_ms: 300,
        }
    }

    #[test]
    fn synchronized_clock_measured_under_the_limit_is_healthy() {
        let reason = judge(&kernel(true, 1_500), &measured(-40, 2_000), LIMIT).unwrap();
        assert!(reason.contains("error bound 2000 us"), "{reason}");
        assert!(reason.contains("kernel max error 1500 us"), "{reason}");
    }

    #[test]
    fn unsynchronized_clock_is_unhealthy_whatever_its_error() {
        let reason = judge(&kernel(false, 10), &measured(0, 10), LIMIT).unwrap_err();
        assert!(reason.contains("not synchronized"), "{reason}");
    }

    #[test]
    fn error_bound_at_or_over_the_limit_is_unhealthy() {
        assert!(judge(&kernel(true, 10), &measured(0, LIMIT - 1), LIMIT).is_ok());
        let reason = judge(&kernel(true, 10), &measured(-99_000, LIMIT), LIMIT).unwrap_err();
        assert!(reason.contains("100000 us"), "{reason}");
        assert!(reason.contains("-99000 us"), "{reason}");
    }

    #[test]
    fn a_small_kernel_max_error_does_not_hide_a_measured_offset() {
        // What chrony leaves in the kernel after the reference stepped 2 s.
        let reason = judge(&kernel(true, 700), &measured(2_000_000, 2_010_000), LIMIT);
        assert!(reason.unwrap_err().contains("2010000 us"));
    }

    #[test]
    fn no_measurement_is_unhealthy_and_says_why() {
        let silent = Verdict::Unknown("no recent answer (reference 169.254.169.123:123)".into());
        let reason = judge(&kernel(true, 10), &silent, LIMIT).unwrap_err();
        assert!(reason.contains("no recent answer"), "{reason}");
    }

    #[test]
    fn refused_status_call_is_unhealthy_and_says_why() {
        let refused = Err(io::Error::from_raw_os_error(libc::EPERM));
        let reason = judge(&refused, &measured(0, 10), LIMIT).unwrap_err();
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
        // In a child that gave up root (and with it every capability) when
        // run as root; as an ordinary user the test process already has none.
        // The child reports adjtimex's errno, or 0, as its exit status.
        // SAFETY: the child only makes system calls and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: plain system calls on constants; _exit never returns.
            unsafe {
                if libc::geteuid() == 0
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(65534) != 0
                        || libc::setuid(65534) != 0)
                {
                    libc::_exit(100);
                }
                let code = match kernel_clock() {
                    Ok(c) if c.max_error_us >= 0 && c.est_error_us >= 0 => 0,
                    Ok(_) => 101,
                    Err(e) => e.raw_os_error().unwrap_or(102).min(99),
                };
                libc::_exit(code);
            }
        }
        let mut status = 0;
        // SAFETY: pid is our child; status is writable.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child status {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "adjtimex(modes=0) without privilege: 100 = could not drop root, \
             101 = nonsense values, else the errno"
        );
    }
}
