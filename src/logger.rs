//! Log lines on stderr, as `LEVEL [module] message`. Under systemd (stderr
//! connected to the journal: JOURNAL_STREAM is set) each line starts with
//! its syslog priority, `<4>` for a warning (sd-daemon(3)), so that journald
//! files it at that level instead of at info: only then do nowd's warnings
//! reach the serial console (journald forwards warnings and worse there).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct Stderr {
    level: LevelFilter,
    journal: bool,
}

/// Installs the logger: everything at `level` and above, nothing of tiny_http
/// (its lines are passing accept errors, up to 20 a second while descriptors
/// run out).
pub fn init(level: LevelFilter) {
    let logger = Stderr {
        level,
        journal: std::env::var_os("JOURNAL_STREAM").is_some(),
    };
    log::set_max_level(level);
    // Called once, first thing in main: there is no other logger to refuse us.
    let _ = log::set_logger(Box::leak(Box::new(logger)));
}

/// The syslog priority of a level, as sd-daemon(3) prefixes write it.
fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

impl Log for Stderr {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= self.level && !m.target().starts_with("tiny_http")
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let prefix = if self.journal {
            format!("<{}>", priority(r.level()))
        } else {
            String::new()
        };
        // One write per line, so lines of different threads never interleave.
        let line = format!("{prefix}{:<5} [{}] {}\n", r.level(), r.target(), r.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_and_errors_map_to_the_syslog_priorities_journald_forwards() {
        // journald's MaxLevelConsole=warning forwards priorities 0..=4.
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Warn), 4);
        assert!(priority(Level::Info) > 4 && priority(Level::Debug) > 4);
    }
}
