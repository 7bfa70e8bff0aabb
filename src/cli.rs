//! Command line: `nowd [--listen ADDR] [--log-level LEVEL] [--max-clock-error-ms N]
//! [--time-reference ADDR]`.

use log::LevelFilter;
use std::net::{SocketAddr, ToSocketAddrs};

pub const USAGE: &str = "\
Usage: nowd [--listen ADDR] [--log-level LEVEL] [--max-clock-error-ms N]
            [--time-reference ADDR]

Serves the current UTC time on GET /now and the clock's health on GET /healthz.
Every answer names the instance (Nowd-Instance:) with an opaque id derived
from the machine id ($CREDENTIALS_DIRECTORY/machine-id, else /etc/machine-id).

Options:
  --listen ADDR             address and port to listen on [default: 127.0.0.1:8080]
                            (IPv6 in brackets: [::]:80 takes IPv4 and IPv6)
  --log-level LEVEL         off, error, warn, info, debug or trace [default: info]
  --max-clock-error-ms N    /healthz answers 503 when the served clock's error
                            bound reaches N milliseconds [default: 100]
  --time-reference ADDR     the SNTP server nowd measures its clock against,
                            about once a second [default: 169.254.169.123:123,
                            the Amazon Time Sync Service; a bare IP means :123]
  -h, --help                print this help
  -V, --version             print the version";

#[derive(Debug, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub log_level: LevelFilter,
    pub max_clock_error_ms: u32,
    pub time_reference: SocketAddr,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Serve(Config),
    Help,
    Version,
}

/// Parses the arguments (without the program name). `Err` is a one-line message.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        log_level: LevelFilter::Info,
        max_clock_error_ms: 100,
        time_reference: SocketAddr::from(([169, 254, 169, 123], 123)),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--listen" => config.listen = parse_addr(&value()?)?,
            "--log-level" => {
                let v = value()?;
                config.log_level = v.parse().map_err(|_| {
                    format!("--log-level: '{v}' is not one of off, error, warn, info, debug, trace")
                })?;
            }
            "--max-clock-error-ms" => {
                let v = value()?;
                config.max_clock_error_ms = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=3_600_000).contains(n))
                    .ok_or_else(|| {
                        format!(
                            "--max-clock-error-ms: '{v}' is not a whole number from 1 to 3600000"
                        )
                    })?;
            }
            "--time-reference" => {
                let v = value()?;
                // An IP address, no name: nowd has no resolver in its sandbox.
                config.time_reference = v
                    .parse()
                    .or_else(|_| v.parse().map(|ip| SocketAddr::new(ip, 123)))
                    .map_err(|_| {
                        format!(
                            "--time-reference: '{v}' is not an IP address (169.254.169.123) \
                             or address and port (127.0.0.1:12345)"
                        )
                    })?;
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(Command::Serve(config))
}

/// `HOST:PORT`; a name (localhost) resolves to its first address.
fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .or_else(|_| {
            v.to_socket_addrs()
                .map_err(drop)
                .and_then(|mut a| a.next().ok_or(()))
        })
        .map_err(|()| format!("--listen: '{v}' is not an address like 127.0.0.1:8080 or [::]:80"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Command, String> {
        parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_are_loopback_8080_info_100ms() {
        let Ok(Command::Serve(c)) = args(&[]) else {
            panic!()
        };
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            (c.log_level, c.max_clock_error_ms),
            (LevelFilter::Info, 100)
        );
        assert_eq!(c.time_reference.to_string(), "169.254.169.123:123");
    }

    #[test]
    fn time_reference_takes_an_ip_with_or_without_a_port() {
        let reference = |v: &str| match args(&["--time-reference", v]) {
            Ok(Command::Serve(c)) => Ok(c.time_reference.to_string()),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(reference("10.1.2.3").unwrap(), "10.1.2.3:123");
        assert_eq!(reference("127.0.0.1:4123").unwrap(), "127.0.0.1:4123");
        assert_eq!(reference("[fd00::7b]:123").unwrap(), "[fd00::7b]:123");
        assert!(reference("time.aws.com").unwrap_err().contains("not an IP"));
    }

    #[test]
    fn both_flag_forms_and_ipv6_are_accepted() {
        let Ok(Command::Serve(c)) = args(&[
            "--listen=[::]:80",
            "--log-level",
            "debug",
            "--max-clock-error-ms",
            "250",
        ]) else {
            panic!()
        };
        assert_eq!(c.listen.to_string(), "[::]:80");
        assert_eq!(
            (c.log_level, c.max_clock_error_ms),
            (LevelFilter::Debug, 250)
        );
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(args(&["--bogus"]).unwrap_err().contains("unknown argument"));
        assert!(args(&["--listen"]).unwrap_err().contains("needs a value"));
        assert!(
            args(&["--listen", "nowhere"])
                .unwrap_err()
                .contains("not an address")
        );
        assert!(
            args(&["--log-level", "loud"])
                .unwrap_err()
                .contains("not one of")
        );
        assert!(
            args(&["--max-clock-error-ms", "0"])
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            args(&["--max-clock-error-ms", "-5"])
                .unwrap_err()
                .contains("whole number")
        );
    }

    #[test]
    fn help_and_version_win_over_other_flags() {
        assert_eq!(args(&["--log-level", "debug", "--help"]), Ok(Command::Help));
        assert_eq!(args(&["-h"]), Ok(Command::Help));
        assert_eq!(args(&["--version"]), Ok(Command::Version));
    }
}
