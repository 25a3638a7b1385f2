use std::time::Duration;

use super::*;

fn name(s: &str) -> OwnedServerName {
    OwnedServerName::try_from(s).expect("server name")
}

/// Whether `admit` is still waiting after a moment.
async fn waits<F: std::future::Future>(admit: F) -> bool {
    tokio::time::timeout(Duration::from_millis(50), admit)
        .await
        .is_err()
}

#[tokio::test]
async fn an_origin_runs_so_many_waits_so_many_and_is_refused_beyond() {
    let admission = Admission::new(2, 1, Arc::default());
    let (a, b) = (name("a.example"), name("b.example"));
    let first = admission.admit(&a).await.expect("first runs");
    let second = admission.admit(&a).await.expect("second runs");
    let third = tokio::spawn({
        let (admission, a) = (admission.clone(), a.clone());
        async move { admission.admit(&a).await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!third.is_finished(), "the third waits");
    let metrics = admission.stats.to_prometheus();
    for gauge in ["{state=\"running\"} 2\n", "{state=\"waiting\"} 1\n"] {
        assert!(metrics.contains(gauge), "{gauge} in {metrics}");
    }
    let refused = admission
        .admit(&a)
        .await
        .err()
        .expect("the fourth is refused");
    assert_eq!(refused.errcode, "M_LIMIT_EXCEEDED");
    assert_eq!(refused.status, http::StatusCode::TOO_MANY_REQUESTS);
    let metrics = admission.stats.to_prometheus();
    assert!(
        metrics.contains("hearth_federation_inbound_limited_total 1\n"),
        "{metrics}"
    );
    // Another server is not held up.
    drop(admission.admit(&b).await.expect("b runs"));
    drop(first);
    third
        .await
        .expect("task")
        .expect("the third runs once one ends");
    drop(second);
    assert_eq!(admission.tracked(), 0, "idle origins are forgotten");
    let metrics = admission.stats.to_prometheus();
    for gauge in ["{state=\"running\"} 0\n", "{state=\"waiting\"} 0\n"] {
        assert!(metrics.contains(gauge), "{gauge} in {metrics}");
    }
}

#[tokio::test]
async fn a_request_given_up_while_waiting_frees_its_place() {
    let admission = Admission::new(1, 1, Arc::default());
    let a = name("a.example");
    let running = admission.admit(&a).await.expect("runs");
    assert!(waits(admission.admit(&a)).await, "waits, then is dropped");
    let waiting = tokio::spawn({
        let (admission, a) = (admission.clone(), a.clone());
        async move { admission.admit(&a).await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "the dropped one's place was free");
    drop(running);
    waiting.await.expect("task").expect("runs");
    assert_eq!(admission.tracked(), 0);
    let metrics = admission.stats.to_prometheus();
    assert!(metrics.contains("{state=\"waiting\"} 0\n"), "{metrics}");
}
