//! SIGINT and SIGTERM: the first asks the running command to stop at its next checkpoint (a
//! batch, a timed run, a sweep point), write what it has finished and exit 128 + the signal
//! (130, 143); a second one exits at once with that status.
//!
//! The handlers only store to atomics (`signal_hook::flag`), which is async-signal-safe; the
//! work loops poll [`check`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};

/// The signal that asked to stop (0: none yet).
static SIGNAL: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// A run stopped by a signal; its exit status is 128 + the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", signal_name(*.0))]
pub struct Interrupted(pub i32);

impl Interrupted {
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.0).unwrap_or(u8::MAX)
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Installs the handlers. Commands that only compute a report in microseconds do not call
/// this, so they keep the default (immediate) behaviour.
pub fn install() -> std::io::Result<()> {
    let signal = SIGNAL.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    let stopping = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag before this signal sets it: only a second
        // signal exits immediately.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&stopping))?;
        signal_hook::flag::register(sig, Arc::clone(&stopping))?;
        signal_hook::flag::register_usize(sig, Arc::clone(signal), sig as usize)?;
    }
    Ok(())
}

/// The interruption, if a signal has asked to stop.
pub fn requested() -> Option<Interrupted> {
    let signal = SIGNAL.get()?.load(Ordering::SeqCst);
    (signal != 0).then(|| Interrupted(i32::try_from(signal).unwrap_or(SIGTERM)))
}

/// `Err` once a signal has asked to stop: the work loops' checkpoint.
pub fn check() -> Result<(), Interrupted> {
    requested().map_or(Ok(()), Err)
}
