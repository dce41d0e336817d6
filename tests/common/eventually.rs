//! Waiting for a condition in async tests, bounded in time.

use std::time::Duration;

/// Waits until `cond` holds, polling every 20 ms, for up to `limit`.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    tokio::time::timeout(limit, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok()
}
