use super::*;

fn presence(state: &str, heard_ms: u64, announced_ms: u64, syncing: u32) -> Presence {
    Presence {
        state: state.into(),
        status_msg: None,
        last_active_ms: 0,
        currently_active: false,
        changed: 0,
        heard_ms,
        syncing,
        announced_ms,
    }
}

#[test]
fn presence_runs_out_as_synapse_expects() {
    let t = 100 * 60_000;
    // Our user: offline once the grace after their last sync is over,
    // never while a sync is in progress.
    assert_eq!(
        presence("online", t, t, 0).due(true, t + SYNC_GRACE_MS),
        Due::Nothing
    );
    assert_eq!(
        presence("online", t, t, 0).due(true, t + SYNC_GRACE_MS + 1),
        Due::Offline
    );
    assert_eq!(
        presence("unavailable", t, t, 0).due(true, t + SYNC_GRACE_MS + 1),
        Due::Offline
    );
    let syncing = presence("online", t, t, 1);
    assert_eq!(syncing.due(true, t + SYNC_GRACE_MS + 1), Due::Nothing);
    // Still here: announced again every 25 minutes.
    let here = presence("online", t + ANNOUNCE_EVERY_MS, t, 1);
    assert_eq!(here.due(true, t + ANNOUNCE_EVERY_MS), Due::Nothing);
    assert_eq!(here.due(true, t + ANNOUNCE_EVERY_MS + 1), Due::Announce);
    // Another server's user: offline after 30 minutes unheard of.
    let remote = presence("online", t, 0, 0);
    assert_eq!(remote.due(false, t + REMOTE_TIMEOUT_MS), Due::Nothing);
    assert_eq!(remote.due(false, t + REMOTE_TIMEOUT_MS + 1), Due::Offline);
    // Offline stays offline, and is not announced again.
    assert_eq!(presence("offline", 0, 0, 0).due(true, t), Due::Nothing);
    assert_eq!(presence("offline", 0, 0, 0).due(false, t), Due::Nothing);
}
