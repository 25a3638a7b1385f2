//! The default log (`info`) written to a file: nothing per event (ruma's
//! auth checks and state resolution log each event at info), and no
//! terminal colour codes.

mod common;

use std::{process::Stdio, time::Duration};

use common::{
    rooms::{create, say, user},
    Hearth, TestCa,
};

#[tokio::test]
async fn the_default_log_has_no_per_event_lines_and_no_colour_codes() {
    let ca = TestCa::new();
    let mut hearth = Hearth::start(&ca);
    hearth.kill();
    // The same server, at the default level, logging to a file.
    let log_path = hearth.data_dir().with_file_name("info.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = hearth
        .command(&[])
        .env("HEARTH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start hearth");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(hearth.client).is_err() {
        assert!(std::time::Instant::now() < deadline, "hearth did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let alice = user(&hearth, "alice");
    let room = create(&hearth, &alice, "12").await;
    for i in 0..20 {
        say(&hearth, &room, &alice, &format!("message {i}")).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).expect("log");
    assert!(text.contains("hearth is listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file:\n{text}"
    );
    let lines = text.lines().count();
    assert!(
        lines < 10,
        "{lines} lines for a room and 20 messages at info:\n{text}"
    );
}
