//! A hard cap on the heap.
//!
//! Every buffer tiny_http keeps per connection is bounded (vendor/tiny_http/
//! PATCHES.md), a connection holds at most one request and one answer, and
//! connections are bounded in number and lifetime (limits.rs). This is the
//! backstop for anything not foreseen: past HEAP_LIMIT an allocation fails,
//! Rust aborts the process (SIGABRT, a non-zero exit), and systemd starts a
//! fresh one within RestartSec. Memory stays bounded by construction, and
//! the machine never swaps or lets the kernel's OOM killer choose a victim.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// nowd itself needs well under 1 MiB; its cap of open connections, a few
/// KiB each, some 40 MiB (docs/CAPACITY.md). Below the unit's MemoryMax, so
/// that the cap, not the kernel, ends a runaway (tests/bounds.rs).
pub const HEAP_LIMIT: usize = 128 * 1024 * 1024;

pub struct CappedAllocator {
    in_use: AtomicUsize,
}

impl CappedAllocator {
    pub const fn new() -> Self {
        CappedAllocator {
            in_use: AtomicUsize::new(0),
        }
    }

    /// Reserves `size` bytes of the budget; false when that would pass the cap.
    fn reserve(&self, size: usize) -> bool {
        let before = self.in_use.fetch_add(size, Relaxed);
        if before + size > HEAP_LIMIT {
            self.in_use.fetch_sub(size, Relaxed);
            return false;
        }
        true
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; only the
// bookkeeping is added, and a refused allocation returns null as the contract allows.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !self.reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            self.in_use.fetch_sub(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        self.in_use.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !self.reserve(new_size - old) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            if new_size > old {
                self.in_use.fetch_sub(new_size - old, Relaxed);
            }
        } else if new_size < old {
            self.in_use.fetch_sub(old - new_size, Relaxed);
        }
        p
    }
}
