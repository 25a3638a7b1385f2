#![allow(clippy::result_large_err)] // figment's test Jail returns its own large error

use super::*;

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
    assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
    assert!(parse_duration("7 weeks").is_err());
    assert!(parse_duration("d").is_err());
    assert!(parse_duration("99999999999999999999d").is_err());
}

#[test]
fn validity_below_an_hour_is_refused() {
    let short = KeyValidity::try_from(DurationText::Text("59m".into()));
    assert!(short.unwrap_err().contains("minimum"));
    assert!(KeyValidity::try_from(DurationText::Seconds(3600)).is_ok());
}

#[test]
fn bad_values_name_their_key() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "c.toml",
            "server_name = \"x.org\"\n[listen]\nfederation = \"nope\"",
        )?;
        let err = Config::load(Path::new("c.toml"), true).unwrap_err();
        assert!(err.starts_with("listen.federation:"), "{err}");
        jail.create_file("d.toml", "[keys]\nvalidity = \"10m\"")?;
        let err = Config::load(Path::new("d.toml"), true).unwrap_err();
        assert!(err.starts_with("keys.validity:"), "{err}");
        jail.create_file("e.toml", "srever_name = \"typo.org\"")?;
        let err = Config::load(Path::new("e.toml"), true).unwrap_err();
        assert!(err.contains("srever_name"), "{err}");
        Ok(())
    });
}

#[test]
fn environment_overrides_file() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("c.toml", "server_name = \"file.org\"")?;
        jail.set_env("HEARTH_SERVER_NAME", "env.org");
        jail.set_env("HEARTH_LISTEN__CLIENT", "127.0.0.1:9999");
        jail.set_env("HEARTH_FEDERATION__ALLOW_PRIVATE_ADDRESSES", "true");
        let config = Config::load(Path::new("c.toml"), true).expect("loads");
        assert_eq!(config.server_name.as_str(), "env.org");
        assert_eq!(config.listen.client.port(), 9999);
        assert!(config.federation.allow_private_addresses);
        Ok(())
    });
}

#[test]
fn missing_named_file_is_an_error_but_default_path_is_not() {
    figment::Jail::expect_with(|_jail| {
        assert!(Config::load(Path::new("absent.toml"), true).is_err());
        assert!(Config::load(Path::new("absent.toml"), false).is_ok());
        Ok(())
    });
}

/// The shipped `config.toml` says what the defaults are: it must say so
/// truly (a limit changed in one place and not the other fails here).
#[test]
fn the_shipped_config_shows_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let shipped: Config = Figment::new()
        .merge(Toml::file(path))
        .extract()
        .expect("config.toml parses");
    let as_json = |c: &Config| serde_json::to_value(c).expect("serialises");
    assert_eq!(as_json(&shipped), as_json(&Config::default()));
}
