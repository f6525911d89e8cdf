//! The fuzz targets' library: the target bodies (shared with the stable
//! corpus replay test `tests/fuzz_corpus.rs`) and an allocation guard.

pub mod bodies;

use std::alloc::{GlobalAlloc, Layout, System};

/// Largest single allocation a parser may make on any input (1 GiB, the
/// `-malloc_limit_mb=1024` of scripts/fuzz.sh). libFuzzer's own malloc limit
/// needs a sanitizer's malloc hooks; this guard also works with `-s none`.
pub const MAX_ALLOCATION_BYTES: usize = 1 << 30;

/// The system allocator, aborting (a crash libFuzzer records with its
/// input) on an allocation above [`MAX_ALLOCATION_BYTES`].
struct Guard;

fn too_big(size: usize) -> ! {
    eprintln!(
        "==vegard-fuzz== allocation of {size} bytes exceeds the {MAX_ALLOCATION_BYTES}-byte limit"
    );
    std::process::abort()
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the guard only aborts before forwarding.
unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION_BYTES {
            too_big(layout.size());
        }
        // SAFETY: same layout, same contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION_BYTES {
            too_big(layout.size());
        }
        // SAFETY: same layout, same contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOCATION_BYTES {
            too_big(new_size);
        }
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GUARD: Guard = Guard;
