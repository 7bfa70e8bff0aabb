//! nowd: the current time on GET /now.
//!
//! This file only wires things together: the command line, logging, signals,
//! the listener, and the one loop that answers every request and polls the
//! clock's health. The answers are in `http`, the clock in `clock`, its health
//! (and `/healthz`'s verdict) in `health`, the connection bounds in `limits`.

mod alloc;
mod cli;
mod clock;
mod health;
mod http;
mod instance;
mod limits;
mod listener;
mod logger;
mod page;
mod reference;
mod sched;
mod systemd;

use log::{debug, error, info, warn};
use std::io;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tiny_http::Server;

#[global_allocator]
static HEAP: alloc::CappedAllocator = alloc::CappedAllocator::new();

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The loop wakes at least this often, so a signal is seen within it.
const TICK: Duration = Duration::from_millis(100);
/// How often the watchdog is fed.
const WATCHDOG_INTERVAL: Duration = Duration::from_secs(1);
/// After SIGTERM, queued requests are answered for at most this long.
const DRAIN_TIME: Duration = Duration::from_millis(500);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed); // async-signal-safe: one atomic store
}

fn main() -> ExitCode {
    let config = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Serve(config)) => config,
        Ok(cli::Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Command::Version) => {
            println!("nowd {VERSION}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("nowd: {message}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    // No timestamps: journald adds its own.
    logger::init(config.log_level);
    std::panic::set_hook(Box::new(|p| {
        let at = p
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let what = p
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        error!(
            "panic in thread {:?}{at}: {what}",
            std::thread::current().name().unwrap_or("-")
        );
    }));

    match serve(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: &cli::Config) -> io::Result<()> {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(signal, on_stop_signal as *const () as libc::sighandler_t) };
    }
    // Before any thread is started: they inherit it.
    if let Err(e) = sched::batch() {
        warn!("cannot set SCHED_BATCH, wake-ups preempt: {e}");
    }
    let descriptors = listener::raise_nofile_limit().unwrap_or_else(|e| {
        warn!("cannot raise the open file limit: {e}");
        limits::SPARE_DESCRIPTORS + 2
    });
    let listener = listener::bind(config.listen).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
    })?;
    let instance = instance::load()
        .inspect_err(|e| warn!("answers carry no instance id: {e}"))
        .ok();
    let mut health = health::Health::new(
        i64::from(config.max_clock_error_ms) * 1000,
        reference::Reference::new(config.time_reference),
    );
    let mut responder = http::Responder::new().with_instance(instance);

    // tiny_http gets its own copy of the socket: nowd keeps one to shut down.
    // It keeps every connection's deadlines and the connection cap itself.
    let server = Server::from_listener_with_limits(
        listener.try_clone()?,
        None,
        limits::connection_limits(descriptors),
    )
    .map_err(|e| io::Error::other(e.to_string()))?;
    let mut last_watchdog = Instant::now();

    let notifier = systemd::Notifier::from_env();
    info!(
        "nowd {VERSION} listening on http://{} (max clock error {} ms against {}, at most {} connections)",
        listener.local_addr()?,
        config.max_clock_error_ms,
        config.time_reference,
        limits::max_connections(descriptors)
    );
    if let Some(n) = &notifier {
        n.notify("READY=1");
    }

    while !STOP.load(Ordering::Relaxed) {
        match server.recv_timeout(TICK) {
            Ok(Some(request)) => handle(request, &mut responder, health.snapshot()),
            Ok(None) => {}
            // The accept loop retries every passing error itself (patched
            // tiny_http); one it reports means the socket is unusable. A fresh
            // process, started by systemd, is the repair.
            Err(e) => return Err(io::Error::other(format!("accept loop ended: {e}"))),
        }
        health.poll();
        if last_watchdog.elapsed() < WATCHDOG_INTERVAL {
            continue;
        }
        last_watchdog = Instant::now();
        // The loop is turning: systemd restarts nowd if this stops for WatchdogSec.
        if let Some(n) = notifier.as_ref().filter(|n| n.watchdog.is_some()) {
            n.notify("WATCHDOG=1");
        }
    }

    info!("stopping: no new connections, answering what is queued");
    if let Some(n) = &notifier {
        n.notify("STOPPING=1");
    }
    // Shutting the listening socket down refuses new connections at once and
    // wakes tiny_http's accept thread; requests already read are still answered.
    // SAFETY: the descriptor is open; shutdown does not close it.
    unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
    let deadline = Instant::now() + DRAIN_TIME;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match server.recv_timeout(left.min(Duration::from_millis(50))) {
            Ok(Some(request)) => handle(request, &mut responder, health.snapshot()),
            Ok(None) => break, // nothing more in flight
            Err(_) => {}       // the accept thread reporting the shutdown
        }
    }
    Ok(())
}

fn handle(
    request: tiny_http::Request,
    responder: &mut http::Responder,
    health: health::Snapshot<'_>,
) {
    let line = log::log_enabled!(log::Level::Debug).then(|| {
        let peer = request.remote_addr().map_or("-".into(), |a| a.to_string());
        format!("{} {} from {peer}", request.method(), request.url())
    });
    let result = responder.respond(request, health);
    if let Some(line) = line {
        // A client that left is its own affair, not an error of the service.
        match result {
            Ok(status) => debug!("{line}: {status}"),
            Err(e) => debug!("{line}: answer not delivered: {e}"),
        }
    }
}
