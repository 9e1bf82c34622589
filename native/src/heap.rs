//! Freed memory kept for reuse while a proof runs.
//!
//! glibc's `malloc` serves every allocation of 32 MiB or more (one `2^20`-row column is
//! exactly that) with its own `mmap` and unmaps it at `free`, so each column, coset column
//! and polynomial of a `2^20` proof page-faults its memory in afresh (the kernel zeroes every
//! page). Measured on 2 cores, three `2^20` proofs in one process: 15.5-15.6 s each with the
//! scope against 16.0-16.1 s without, 8.3 s of system time in all against 12.3 s (and
//! transparent huge pages, tried as well, gained nothing). Inside `enter` .. `exit` the
//! process's `malloc` takes large blocks from its heap instead (`M_MMAP_MAX = 0`) and keeps
//! what is freed there (`M_TRIM_THRESHOLD` at its maximum), so the next column reuses
//! pages that are already mapped; the outermost `exit` restores glibc's defaults and hands
//! the free memory back to the kernel (`malloc_trim(0)`). Nested and concurrent scopes
//! count: the settings change only at the outermost ones. Where the C library is not glibc
//! both are no-ops.

use std::sync::Mutex;

/// Open scopes in this process.
static DEPTH: Mutex<usize> = Mutex::new(0);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::os::raw::c_int;

    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
        fn malloc_trim(pad: usize) -> c_int;
    }

    // <malloc.h>
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_MAX: c_int = -4;
    // glibc's defaults (malloc/malloc.c: DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX).
    const DEFAULT_TRIM_THRESHOLD: c_int = 128 * 1024;
    const DEFAULT_MMAP_MAX: c_int = 65536;

    pub fn keep_freed_memory() {
        // SAFETY: mallopt only sets malloc's parameters, under malloc's own lock.
        unsafe {
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, c_int::MAX);
        }
    }

    pub fn restore_defaults() {
        // SAFETY: as above; malloc_trim returns free heap memory to the kernel.
        unsafe {
            mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX);
            mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD);
            malloc_trim(0);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    pub fn keep_freed_memory() {}
    pub fn restore_defaults() {}
}

/// Open a scope (the outermost one switches `malloc` to reuse); returns the depth.
pub fn enter() -> usize {
    let mut depth = DEPTH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *depth == 0 {
        glibc::keep_freed_memory();
    }
    *depth += 1;
    *depth
}

/// Close a scope (the outermost one restores the defaults and trims); returns the depth.
pub fn exit() -> usize {
    let mut depth = DEPTH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *depth == 1 {
        glibc::restore_defaults();
    }
    *depth = depth.saturating_sub(1);
    *depth
}

/// `heap_reuse_enter() -> int`: open a scope in which freed memory is kept for reuse (see
/// the module note); returns the number of open scopes.
#[pyo3::pyfunction]
pub fn heap_reuse_enter() -> usize {
    enter()
}

/// `heap_reuse_exit() -> int`: close one; the last restores malloc's defaults.
#[pyo3::pyfunction]
pub fn heap_reuse_exit() -> usize {
    exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_memory_is_usable_inside_and_after() {
        assert_eq!(enter(), 1);
        assert_eq!(enter(), 2);
        let big = vec![7u8; 40 << 20];
        assert_eq!(big[(40 << 20) - 1], 7);
        drop(big);
        assert_eq!(exit(), 1);
        let again = vec![9u8; 40 << 20];
        assert_eq!(again[0], 9);
        drop(again);
        assert_eq!(exit(), 0);
        assert_eq!(exit(), 0, "an unmatched exit stays at zero");
        let after = vec![1u8; 40 << 20];
        assert_eq!(after.iter().map(|&b| b as usize).sum::<usize>(), 40 << 20);
    }
}
