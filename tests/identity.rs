//! A data directory knows whose it is: a database that is gone or empty
//! beside its identity, or a start under another server name, is refused
//! with one clear line instead of becoming a new server with a new key.

mod common;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use common::{Hearth, TestCa};
use serde_json::Value;

/// Runs the server on `hearth`'s settings (plus `extra`) and expects it to
/// stop by itself; its stderr.
fn refused(hearth: &Hearth, extra: &[(&str, &str)]) -> String {
    let mut child = hearth
        .command(&[])
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hearth");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(!status.success(), "hearth exited successfully");
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
                .expect("stderr");
            return stderr;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hearth started on a directory it should have refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn identity(hearth: &Hearth) -> Value {
    let text = std::fs::read(hearth.data_dir().join("identity.json")).expect("identity.json");
    serde_json::from_slice(&text).expect("JSON")
}

fn current_key(identity: &Value) -> String {
    identity["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["expired_ts"].is_null())
        .and_then(|k| k["key_id"].as_str())
        .expect("a current key")
        .to_owned()
}

#[tokio::test]
async fn a_lost_database_is_refused_not_replaced_by_a_new_server() {
    let ca = TestCa::new();
    let mut hearth = Hearth::start(&ca);
    let keys = hearth.server_keys(&ca).await;
    let published = keys["verify_keys"]
        .as_object()
        .and_then(|k| k.keys().next().cloned())
        .expect("a key");
    let before = identity(&hearth);
    assert_eq!(before["server_name"], hearth.server_name.as_str());
    assert_eq!(current_key(&before), published);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(hearth.data_dir().join("identity.json"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    hearth.kill();

    // The database gone (a bad copy, a wrong mount): refused, untouched.
    std::fs::remove_dir_all(hearth.data_dir().join("db")).expect("remove db");
    let stderr = refused(&hearth, &[]);
    assert!(
        stderr.contains("missing or empty") && stderr.contains("backup"),
        "{stderr}"
    );
    assert!(
        !hearth.data_dir().join("db").exists(),
        "a new database was made"
    );
    assert_eq!(identity(&hearth), before);
}

#[tokio::test]
async fn another_server_name_is_refused_and_old_directories_are_adopted() {
    let ca = TestCa::new();
    let mut hearth = Hearth::start(&ca);
    let key = current_key(&identity(&hearth));
    hearth.kill();

    let stderr = refused(&hearth, &[("HEARTH_SERVER_NAME", "someone.else")]);
    assert!(
        stderr.contains("belongs to") && stderr.contains(&hearth.server_name),
        "{stderr}"
    );

    // A directory from before identity.json: its key is adopted, not replaced.
    std::fs::remove_file(hearth.data_dir().join("identity.json")).expect("remove");
    hearth.restart();
    assert_eq!(current_key(&identity(&hearth)), key);

    // A rotation is recorded in both.
    let out = hearth.cli(&["keys", "rotate"]);
    assert!(out.contains("new signing key"), "{out}");
    let rotated = identity(&hearth);
    assert_ne!(current_key(&rotated), key);
    assert_eq!(rotated["keys"].as_array().map(Vec::len), Some(2));
}
