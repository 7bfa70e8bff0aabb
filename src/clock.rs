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
pub fn now() -> Now {
    let t = OffsetDateTime::now_utc();
    Now {
        // Formatting a valid UTC instant with a fixed description cannot fail.
        rfc3339: t.format(RFC3339_MICROS).unwrap_or_default(),
        unix_ns: t.unix_timestamp_nanos(),
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
    fn now_is_rfc3339_utc_with_microseconds() {
        let n = now();
        assert_eq!(n.rfc3339.len(), "2026-11-21T22:49:22.123456Z".len());
        assert!(n.rfc3339.ends_with('Z') && n.rfc3339.as_bytes()[10] == b'T');
        let secs = (n.unix_ns / 1_000_000_000) as i64;
        let parsed = OffsetDateTime::from_unix_timestamp(secs).unwrap();
        assert_eq!(
            &n.rfc3339[..19],
            &parsed.format(RFC3339_MICROS).unwrap()[..19]
        );
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
