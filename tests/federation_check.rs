//! `hearth federation-check` against real servers on loopback.

mod common;

use std::net::SocketAddr;

use common::{
    dns::TestDns,
    free_port,
    web::{Canned, TestWeb},
    Hearth, TestCa,
};

fn run(checker: &Hearth, args: &[&str]) -> (i32, String, String) {
    let out = checker
        .command(args)
        .output()
        .expect("run federation-check");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[tokio::test]
async fn a_delegated_hearth_passes_and_a_stopped_one_fails() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let web = TestWeb::start(&ca);
    let port = free_port();
    let mut target = Hearth::start_at(
        &ca,
        "check.hearth.test",
        SocketAddr::from(([127, 0, 0, 1], port)),
        &[],
    );
    dns.add_ip("check.hearth.test", web.addr.ip());
    dns.add_ip("box.hearth.test", [127, 0, 0, 1].into());
    web.set(
        "/.well-known/matrix/server",
        Canned::json(&format!(r#"{{"m.server": "box.hearth.test:{port}"}}"#)),
    );
    let (key, value) = dns.env();
    let checker = Hearth::start_with(&ca, &[(key, &value)]);

    let (code, stdout, stderr) = run(&checker, &["federation-check", "check.hearth.test"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for expected in [
        &format!("m.server is box.hearth.test:{port}"),
        "box.hearth.test has addresses 127.0.0.1",
        "valid for box.hearth.test",
        "hearth 0.1.0",
        "signature verified",
        "OK: check.hearth.test federates",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    let (code, stdout, _) = run(
        &checker,
        &["federation-check", "--json", "check.hearth.test"],
    );
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["ok"], true);
    assert_eq!(
        report["resolution"]["authority"],
        format!("box.hearth.test:{port}")
    );
    assert!(
        report["keys"]["Ok"][0]["key_id"]
            .as_str()
            .unwrap_or("")
            .starts_with("ed25519:"),
        "{report}"
    );

    target.kill();
    let (code, stdout, stderr) = run(&checker, &["federation-check", "check.hearth.test"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains("FAIL") && stderr.contains("refused"),
        "{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn a_certificate_for_the_wrong_name_fails_the_check() {
    let (ca, dns) = (TestCa::new(), TestDns::start());
    let port = free_port();
    let _target = Hearth::start_at(
        &ca,
        "wrong.example",
        SocketAddr::from(([127, 0, 0, 1], port)),
        &[],
    );
    dns.add_ip("wrong.example", [127, 0, 0, 1].into());
    let (key, value) = dns.env();
    let checker = Hearth::start_with(&ca, &[(key, &value)]);
    let name = format!("wrong.example:{port}");
    let (code, stdout, stderr) = run(&checker, &["federation-check", &name]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("INVALID") && stdout.contains("sha256"),
        "{stdout}"
    );
    assert!(stderr.contains("valid certificate"), "{stderr}");
}

#[tokio::test]
async fn bad_names_are_refused_up_front() {
    let ca = TestCa::new();
    let checker = Hearth::start(&ca);
    let (code, _, stderr) = run(&checker, &["federation-check", "not a name"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not a server name"), "{stderr}");
}

#[tokio::test]
async fn hearth_serves_its_own_well_known_for_reverse_proxy_setups() {
    let ca = TestCa::new();
    let delegating = Hearth::start_with(
        &ca,
        &[
            ("HEARTH_WELL_KNOWN__SERVER", "matrix.hearth.test:443"),
            ("HEARTH_WELL_KNOWN__CLIENT", "https://matrix.hearth.test"),
        ],
    );
    let plain = common::http::Target::Plain(delegating.client);
    let (status, body) =
        common::http::request(plain, "GET", "/.well-known/matrix/server", &[], None).await;
    assert_eq!(
        (status, body["m.server"].as_str()),
        (200, Some("matrix.hearth.test:443"))
    );
    let (status, body) = delegating
        .federation_request(&ca, "GET", "/.well-known/matrix/client", &[], None)
        .await;
    assert_eq!(
        (status, body["m.homeserver"]["base_url"].as_str()),
        (200, Some("https://matrix.hearth.test"))
    );

    let silent = Hearth::start(&ca);
    let (status, body) = silent
        .federation_request(&ca, "GET", "/.well-known/matrix/server", &[], None)
        .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (404, Some("M_NOT_FOUND"))
    );

    let bad = silent
        .command(&[])
        .env("HEARTH_WELL_KNOWN__SERVER", "not a name")
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("well_known.server"));
}
