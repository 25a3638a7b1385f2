//! Heavy synchronous work inside async code: reading a large room's state,
//! auth chains or history takes long enough to hold up every other task
//! on the async worker it runs on.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` after moving the worker's other tasks to another worker
/// (`block_in_place`). A current-thread runtime (unit tests) has no other
/// worker: there it just runs.
pub fn reading_much<T>(work: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
