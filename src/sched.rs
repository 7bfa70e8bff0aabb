//! nowd's threads run under SCHED_BATCH (sched(7)).
//!
//! Each request passes through two of nowd's threads (tiny_http's connection
//! thread reads it, the main thread answers it). Under the default policy the
//! connection thread that the client's next request wakes preempts the main
//! thread while it answers, and the main thread is switched back in a moment
//! later: 0.31 involuntary context switches per keep-alive request under
//! `wrk -c32` with nowd on one core, each with the reschedule interrupt
//! behind it. SCHED_BATCH keeps the CPU share and the nice value and drops
//! only that wake-up preemption ("without interactivity causing extra
//! preemptions between the workload's tasks", sched(7)): each thread runs
//! until it waits, at most one time slice. Measured: 0.01 involuntary
//! switches per request, and about a quarter less CPU per request
//! (`bench/PROFILE.md`). The price: a thread woken while another process
//! has the CPU waits for that one's time slice instead of preempting it.
//!
//! Threads inherit the policy, so it is set once, before any is started. The
//! unit sets it itself (`CPUSchedulingPolicy=batch`), since its system call
//! filter denies sched_setscheduler; `tests/scheduling.rs` checks both.

use std::io;

/// Puts the calling thread, and every thread it starts from now on, under
/// SCHED_BATCH, unless it is already.
pub fn batch() -> io::Result<()> {
    // Raw system calls: musl's sched_getscheduler/sched_setscheduler return
    // ENOSYS by design (POSIX means them per process, Linux does them per thread).
    // SAFETY: no pointer; 0 is the calling thread.
    let policy = unsafe { libc::syscall(libc::SYS_sched_getscheduler, 0) };
    if policy == libc::SCHED_BATCH as libc::c_long {
        return Ok(());
    }
    // Priority 0, the only one SCHED_BATCH takes (musl's struct has more fields).
    // SAFETY: sched_param is plain data; all zeroes is a valid value.
    let param: libc::sched_param = unsafe { std::mem::zeroed() };
    // SAFETY: param is a valid sched_param, only read by the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setscheduler,
            0,
            libc::SCHED_BATCH,
            &param as *const libc::sched_param,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
