use super::*;
use http::HeaderValue;

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).expect("value")))
        .collect()
}

#[test]
fn cache_control_is_honoured_within_bounds() {
    assert_eq!(cache_duration(&HeaderMap::new()), DEFAULT_CACHE);
    assert_eq!(
        cache_duration(&headers(&[(header::CACHE_CONTROL, "public, max-age=7200")])),
        Duration::from_secs(7200)
    );
    assert_eq!(
        cache_duration(&headers(&[(header::CACHE_CONTROL, "max-age=9999999")])),
        MAX_CACHE
    );
    assert_eq!(
        cache_duration(&headers(&[(header::CACHE_CONTROL, "no-store")])),
        MIN_CACHE
    );
    let in_three_hours =
        httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3 * 3600 + 30));
    let expires = cache_duration(&headers(&[(header::EXPIRES, &in_three_hours)]));
    assert!(expires.as_secs().abs_diff(3 * 3600) < 60, "{expires:?}");
}

#[test]
fn responses_are_validated() {
    assert_eq!(
        parse_response(StatusCode::OK, br#"{"m.server": "hs.example.org:443"}"#),
        Ok("hs.example.org:443".into())
    );
    assert_eq!(
        parse_response(StatusCode::OK, br#"{"m.server": "[::1]:8448"}"#),
        Ok("[::1]:8448".into())
    );
    for bad in [
        &br#"{"m.server": 5}"#[..],
        br#"{}"#,
        b"not json",
        br#"{"m.server": "bad host!"}"#,
        br#"{"m.server": ""}"#,
    ] {
        assert!(
            parse_response(StatusCode::OK, bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(parse_response(StatusCode::NOT_FOUND, br#"{"m.server": "a.org"}"#).is_err());
}

#[test]
fn failures_back_off_exponentially_up_to_an_hour() {
    let cache = WellKnownCache::default();
    for expected_minutes in [5, 10, 20, 40, 60, 60] {
        cache.put_failure("h", "down".into());
        let entries = cache.entries.lock().expect("lock");
        let ttl = entries["h"].expires - entries["h"].inserted;
        assert_eq!(ttl, Duration::from_secs(expected_minutes * 60));
    }
    assert_eq!(cache.get("h"), Some(Delegation::None("down".into())));
    cache.put_success("h", "x.org".into(), Duration::from_secs(60));
    assert_eq!(cache.get("h"), Some(Delegation::To("x.org".into())));
}
