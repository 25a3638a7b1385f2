//! The process's allocator: jemalloc for everything below
//! [`LARGE`], the system allocator (glibc) above it.
//!
//! Why both: under glibc's malloc, inbound federation spent ~15% of its
//! CPU in the allocator's slow paths (arena locks, chunk consolidation);
//! with jemalloc the same ingest takes ~30% less CPU per PDU. But large
//! zeroed buffers (sled's ~40 metric histograms of 512 KiB each, never
//! written) stay untouched under glibc, which maps them fresh from the
//! kernel, and became resident under jemalloc (and mimalloc): ~24 MB of
//! zero pages at idle, on a server meant for a Raspberry Pi. Large
//! blocks are rare and never on the hot path.

use std::alloc::{GlobalAlloc, Layout};

use tikv_jemallocator::Jemalloc;

/// Blocks of this size or more go to the system allocator.
const LARGE: usize = 128 * 1024;

/// jemalloc's options, read when it starts: one arena (a Pi has few
/// cores, and each arena keeps its own free pages), dirty pages returned
/// to the kernel after a second instead of ten.
#[used]
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: Options = Options(c"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A C string pointer jemalloc reads as `const char *malloc_conf`.
#[repr(transparent)]
struct Options(*const std::ffi::c_char);

// SAFETY: it points to a static string that is never written.
unsafe impl Sync for Options {}

pub struct Allocator;

fn is_large(layout: &Layout) -> bool {
    layout.size() >= LARGE
}

// SAFETY: every block is freed (and resized) by the allocator that made
// it: which one is decided by the block's size, and the layout passed to
// `dealloc` and `realloc` is the one it was allocated with.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            std::alloc::System.alloc(layout)
        } else {
            Jemalloc.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            std::alloc::System.alloc_zeroed(layout)
        } else {
            Jemalloc.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(&layout) {
            std::alloc::System.dealloc(ptr, layout)
        } else {
            Jemalloc.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        match (is_large(&layout), is_large(&new_layout)) {
            (false, false) => Jemalloc.realloc(ptr, layout, new_size),
            (true, true) => std::alloc::System.realloc(ptr, layout, new_size),
            // Crossing over: a new block from the other allocator.
            _ => {
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests;
