//! The rayon thread pool every call runs in, one per process.
//!
//! The Python prover forks worker processes (`prover.msm.fork_map`). A forked child inherits
//! the parent's memory but none of its threads, so rayon's global pool, once started in the
//! parent, would be a pool without workers in the child and the first parallel call there
//! would wait forever. We therefore never use the global pool: every call runs inside
//! `install` of a pool built by *this* process (keyed by its pid). A child builds its own on
//! first use and leaks the inherited one (dropping it would signal threads that do not
//! exist). arkworks' parallel iterators run in whichever pool they are called from.
//!
//! Size: `RAYON_NUM_THREADS` if set, else the number of CPUs (rayon's default).

use std::sync::Mutex;

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

static POOL: Mutex<Option<(u32, &'static ThreadPool)>> = Mutex::new(None);

fn current_pool() -> Result<&'static ThreadPool> {
    let pid = std::process::id();
    let mut slot = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((owner, pool)) = *slot {
        if owner == pid {
            return Ok(pool);
        }
    }
    let pool = ThreadPoolBuilder::new()
        .thread_name(|i| format!("zkmeter-native-{i}"))
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the native thread pool: {e}")))?;
    // Leaked on purpose: it lives as long as the process, and an inherited one is never dropped.
    let pool: &'static ThreadPool = Box::leak(Box::new(pool));
    *slot = Some((pid, pool));
    Ok(pool)
}

/// Run `f` inside this process's pool (built on first use).
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R> {
    Ok(current_pool()?.install(f))
}

/// The number of worker threads of this process's pool.
pub fn num_threads() -> Result<usize> {
    Ok(current_pool()?.current_num_threads())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_runs_in_our_pool() {
        let inside = install(|| rayon::current_thread_index().is_some()).unwrap();
        assert!(inside, "the closure must run on a worker of the pool");
        assert!(num_threads().unwrap() >= 1);
    }
}
