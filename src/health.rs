//! The served clock's health: the reference poller, the verdict `/healthz`
//! gives, and a log line at each change of that verdict. `main` polls it
//! between requests; the answers read it through a `Snapshot`.

use crate::clock;
use crate::reference::{Reference, Verdict};
use log::{info, warn};
use std::time::{Duration, Instant};

pub struct Health {
    /// /healthz answers 503 at or above this error bound.
    max_error_us: i64,
    reference: Reference,
    /// When the clock was last judged, and whether it was healthy.
    judged: Option<(Instant, bool)>,
    started: Instant,
}

/// The health as an answer sees it. A borrow, not a copy: nowd answers on one
/// thread, between polls, so taking it costs nothing and locks nothing, and
/// each verdict is worked out when the answer is built, as fresh as its clock.
#[derive(Clone, Copy)]
pub struct Snapshot<'a> {
    reference: &'a Reference,
    max_error_us: i64,
}

impl Snapshot<'_> {
    /// nowd's own measurement of the served clock, or why there is none.
    pub fn reference(&self) -> Verdict {
        self.reference.verdict()
    }

    /// /healthz's verdict: `Ok(reason)` to serve, `Err(reason)` not to.
    pub fn judge(&self) -> Result<String, String> {
        clock::judge(
            &clock::kernel_clock(),
            &self.reference.verdict(),
            self.max_error_us,
        )
    }
}

impl Health {
    pub fn new(max_error_us: i64, reference: Reference) -> Health {
        Health {
            max_error_us,
            reference,
            judged: None,
            started: Instant::now(),
        }
    }

    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            reference: &self.reference,
            max_error_us: self.max_error_us,
        }
    }

    /// Lets the clock probe receive and send; cheap, called every loop turn.
    /// About once a second, also judges the clock and logs each change of
    /// the verdict: a warning when /healthz turns 503 (journald forwards
    /// warnings to the serial console, the one window into an instance).
    pub fn poll(&mut self) {
        self.reference.poll();
        // The first verdict once the reference had time to answer (2 s),
        // then one a second.
        let (at, wait) = match self.judged {
            None => (self.started, Duration::from_secs(2)),
            Some((at, _)) => (at, Duration::from_secs(1)),
        };
        if at.elapsed() < wait {
            return;
        }
        let verdict = self.snapshot().judge();
        let healthy = verdict.is_ok();
        if self.judged.map(|(_, was)| was) != Some(healthy) {
            match verdict {
                Ok(reason) => info!("/healthz now answers 200: {reason}"),
                Err(reason) => warn!("/healthz now answers 503: {reason}"),
            }
        }
        self.judged = Some((Instant::now(), healthy));
    }
}
