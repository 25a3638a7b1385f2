use super::*;

fn file(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

fn registration(id: &str, token: &str, users: &str) -> String {
    format!(
        "id: {id}\nurl: http://127.0.0.1:29318\nas_token: as_{token}\nhs_token: hs_{token}\n\
         sender_localpart: {id}bot\nrate_limited: false\nnamespaces:\n  users:\n  \
         - exclusive: true\n    regex: '{users}'\n  aliases:\n  - exclusive: true\n    \
         regex: '#{id}_.*:example\\.org'\n"
    )
}

fn load(files: Vec<PathBuf>) -> Result<Appservices, String> {
    let section = AppserviceSection {
        registrations: files,
    };
    Appservices::load(&section, ServerName::parse("example.org").unwrap().as_ref())
}

#[test]
fn a_registration_claims_its_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let wa = file(
        dir.path(),
        "wa.yaml",
        &registration("wa", "1", "@wa_.*:example\\.org"),
    );
    let all = load(vec![wa]).unwrap();
    let wa = all.by_as_token("as_1").unwrap();
    assert!(all.by_as_token("hs_1").is_none());
    let user = |s: &str| UserId::parse(s).unwrap();
    assert!(wa.claims_user(&user("@wa_123:example.org")));
    assert!(wa.claims_user(&user("@wabot:example.org")));
    assert!(!wa.claims_user(&user("@alice:example.org")));
    // Anchored at the start, as Synapse matches.
    assert!(!wa.claims_user(&user("@x_wa_1:example.org")));
    assert!(all
        .exclusive_owner_of_user(&user("@wa_9:example.org"))
        .is_some());
    let alias = RoomAliasId::parse("#wa_group:example.org").unwrap();
    assert_eq!(&*all.exclusive_owner_of_alias(&alias).unwrap().id, "wa");
    assert!(!wa.rate_limited);
}

#[test]
fn clashing_registrations_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let wa = file(
        dir.path(),
        "wa.yaml",
        &registration("wa", "1", "@wa_.*:example\\.org"),
    );
    let same_id = file(
        dir.path(),
        "b.yaml",
        &registration("wa", "2", "@b_.*:example\\.org"),
    );
    let err = load(vec![wa.clone(), same_id]).unwrap_err();
    assert!(err.contains("b.yaml") && err.contains("id"), "{err}");
    let same_token = file(
        dir.path(),
        "c.yaml",
        &registration("c", "1", "@c_.*:example\\.org"),
    );
    let err = load(vec![wa.clone(), same_token]).unwrap_err();
    assert!(err.contains("token"), "{err}");
    let overlapping = file(
        dir.path(),
        "d.yaml",
        &registration("d", "4", "@wa_bot_.*:example\\.org"),
    );
    let err = load(vec![wa.clone(), overlapping]).unwrap_err();
    assert!(err.contains("exclusive users"), "{err}");
    let apart = file(
        dir.path(),
        "e.yaml",
        &registration("e", "5", "@tg_.*:example\\.org"),
    );
    assert_eq!(load(vec![wa, apart]).unwrap().all().len(), 2);
}

#[test]
fn bad_files_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad_regex = file(dir.path(), "r.yaml", &registration("r", "1", "@r_(:x"));
    let err = load(vec![bad_regex]).unwrap_err();
    assert!(
        err.contains("r.yaml") && err.contains("namespaces.users"),
        "{err}"
    );
    let not_yaml = file(dir.path(), "n.yaml", "id: [");
    assert!(load(vec![not_yaml]).unwrap_err().contains("n.yaml"));
    let missing = dir.path().join("missing.yaml");
    assert!(load(vec![missing]).unwrap_err().contains("missing.yaml"));
    let bad_url = registration("u", "1", "@u_.*").replace("http://127.0.0.1:29318", "ftp://x");
    let bad_url = file(dir.path(), "u.yaml", &bad_url);
    assert!(load(vec![bad_url]).unwrap_err().contains("url"));
}

#[test]
fn literal_prefixes_stop_at_the_first_operator() {
    assert_eq!(literal_prefix("@wa_.*:example\\.org"), "@wa_");
    assert_eq!(literal_prefix("^@tg\\_bot"), "@tg_bot");
    assert_eq!(literal_prefix("@ab?c"), "@a");
    assert_eq!(literal_prefix(".*"), "");
}

#[test]
fn encrypted_bridges_flags_are_read_by_either_name() {
    let dir = tempfile::tempdir().unwrap();
    let plain = registration("wa", "1", "@wa_.*:example\\.org");
    let unstable = format!(
        "{}receive_ephemeral: true\norg.matrix.msc3202: true\nio.element.msc4190: true\n",
        registration("sg", "2", "@sg_.*:example\\.org")
    );
    let stable = format!(
        "{}org.matrix.msc3202: true\ndevice_management: true\n",
        registration("tg", "3", "@tg_.*:example\\.org")
    );
    let all = load(vec![
        file(dir.path(), "wa.yaml", &plain),
        file(dir.path(), "sg.yaml", &unstable),
        file(dir.path(), "tg.yaml", &stable),
    ])
    .unwrap();
    let flags = |token: &str| {
        let a = all.by_as_token(token).unwrap();
        (a.holds_devices(), a.device_management, a.receive_ephemeral)
    };
    assert_eq!(flags("as_1"), (false, false, false));
    assert_eq!(flags("as_2"), (true, true, true));
    assert_eq!(flags("as_3"), (true, true, false));
    let sg = all.by_as_token("as_2").unwrap();
    let user = |s: &str| UserId::parse(s).unwrap();
    assert!(sg.claims_user_exclusively(&user("@sg_1:example.org")));
    assert!(sg.claims_user_exclusively(&user("@sgbot:example.org")));
    assert!(!sg.claims_user_exclusively(&user("@wa_1:example.org")));
}
