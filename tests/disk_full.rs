//! A full disk, on a small tmpfs (tests run as root): writes are refused
//! at once with a clear error, reads go on, the log says so once, memory
//! stays put while clients keep trying, and writes resume by themselves
//! once space is freed, with nothing lost.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::{client::Client, proc::rss_kb, rooms::encode, Hearth, TestCa};
use serde_json::{json, Value};

/// A tmpfs of `mib` MiB mounted for the test, unmounted after.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(mib: u64) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root");
        Self(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(self.path())
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .expect("df's figure")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

async fn send(client: &Client<'_>, room: &str, txn: &str) -> (u16, Value) {
    let path = format!("rooms/{}/send/m.room.message/{txn}", encode(room));
    client
        .call("PUT", &path, json!({"msgtype": "m.text", "body": txn}))
        .await
}

/// Fills the disk until `leave` bytes are free; the filler file.
fn fill(disk: &Tmpfs, leave: u64) -> PathBuf {
    let filler = disk.path().join("filler");
    let size = disk.available().saturating_sub(leave);
    let file = std::fs::File::create(&filler).expect("filler");
    // tmpfs allocates on write, so write it rather than set its length.
    let chunk = vec![7u8; 1024 * 1024];
    let mut writer = std::io::BufWriter::new(file);
    let mut written = 0;
    while written < size {
        let n = chunk.len().min((size - written) as usize);
        std::io::Write::write_all(&mut writer, &chunk[..n]).expect("fill");
        written += n as u64;
    }
    std::io::Write::flush(&mut writer).expect("fill");
    filler
}

#[tokio::test]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers_by_itself() {
    let ca = TestCa::new();
    let disk = Tmpfs::mount(64);
    let data = disk.path().join("data").to_string_lossy().into_owned();
    let mut hearth = Hearth::start_with(
        &ca,
        &[
            ("HEARTH_DATA_DIR", &data),
            ("HEARTH_LIMITS__MIN_FREE_DISK_MIB", "16"),
            ("HEARTH_METRICS__ENABLED", "true"),
            ("HEARTH_LIMITS__MESSAGES_BURST", "100000"),
        ],
    );
    let alice = Client::login(&hearth, "alice").await;
    let room = alice.create_room(json!({})).await;
    let mut sent = Vec::new();
    for i in 0..5 {
        let (status, reply) = send(&alice, &room, &format!("before{i}")).await;
        assert_eq!(status, 200, "{reply}");
        sent.push(reply["event_id"].as_str().expect("event_id").to_owned());
    }
    let since = alice.ok("GET", "sync", json!(null)).await["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_owned();

    let filler = fill(&disk, 8 * 1024 * 1024);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut attempt = 0;
    let refused = loop {
        attempt += 1;
        let (status, reply) = send(&alice, &room, &format!("while-full{attempt}")).await;
        if status != 200 {
            break (status, reply);
        }
        assert!(
            Instant::now() < deadline,
            "writes still taken on a full disk"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refused.0, 507, "{}", refused.1);
    assert_eq!(refused.1["errcode"], "M_RESOURCE_LIMIT_EXCEEDED");

    // Reads go on.
    let sync = alice
        .ok("GET", &format!("sync?since={since}&timeout=0"), json!(null))
        .await;
    assert!(sync["next_batch"].is_string(), "{sync}");
    alice.ok("GET", "sync", json!(null)).await;
    let path = format!("rooms/{}/messages?dir=b&limit=10", encode(&room));
    let page = alice.ok("GET", &path, json!(null)).await;
    let bodies = common::client::bodies(&page["chunk"]);
    assert!(bodies.contains(&"before4".to_owned()), "{page}");
    let metrics = hearth.metrics().await.expect("metrics");
    let free = common::sample(&metrics, "hearth_disk_free_bytes");
    assert!(free < 16 * 1024 * 1024, "{free} free reported");

    // Clients that keep trying cost no memory.
    let pid = hearth.pid().expect("running");
    let before = rss_kb(pid);
    for i in 0..1000 {
        let (status, _) = send(&alice, &room, &format!("retry{i}")).await;
        assert_eq!(status, 507);
    }
    let grown = rss_kb(pid).saturating_sub(before);
    assert!(
        grown < 4096,
        "resident memory grew {grown} kB over 1,000 refused sends"
    );
    let log = hearth.log();
    assert_eq!(log.matches("the disk is full").count(), 1, "{log}");

    // Space is freed: writes resume without a restart.
    std::fs::remove_file(&filler).expect("free the space");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        attempt += 1;
        let (status, reply) = send(&alice, &room, &format!("after{attempt}")).await;
        if status == 200 {
            sent.push(reply["event_id"].as_str().expect("event_id").to_owned());
            break;
        }
        assert!(Instant::now() < deadline, "writes did not resume: {reply}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hearth.log().contains("writes resume"));

    // Nothing acknowledged is lost, across a kill -9.
    let token = alice.token.clone();
    drop(alice);
    hearth.restart();
    let alice = Client {
        h: &hearth,
        token,
        user: String::new(),
        device: String::new(),
    };
    for id in &sent {
        let path = format!("rooms/{}/event/{}", encode(&room), encode(id));
        alice.ok("GET", &path, json!(null)).await;
    }
}
