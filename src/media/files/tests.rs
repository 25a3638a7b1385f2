use super::*;

fn budget(limit: u64) -> Budget {
    Budget {
        limit,
        room: u64::MAX,
        idle: Duration::from_secs(5),
    }
}

fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<bytes::Bytes, io::Error>> {
    futures_util::stream::iter(
        parts
            .iter()
            .map(|p| Ok(bytes::Bytes::from_static(p)))
            .collect::<Vec<_>>(),
    )
}

#[tokio::test]
async fn bytes_are_kept_under_their_hash_and_a_refused_body_leaves_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let files = Files::open(dir.path()).expect("open");
    let received = files
        .receive(chunks(&[b"hello ", b"world"]), budget(11))
        .await
        .expect("exactly the limit");
    assert_eq!(received.size, 11);
    let sha = files.keep(received).await.expect("kept");
    // SHA-256("hello world"), from coreutils' sha256sum.
    assert_eq!(
        hex(&sha),
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    assert_eq!(
        std::fs::read(files.path(&sha)).expect("read"),
        b"hello world"
    );
    assert_eq!(files.all().expect("list"), vec![sha]);

    let refused = files
        .receive(chunks(&[b"hello ", b"world!"]), budget(11))
        .await;
    assert!(
        matches!(refused, Err(ReceiveError::TooLarge)),
        "{:?}",
        refused.err()
    );
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join("media/tmp"))
        .expect("tmp")
        .collect();
    assert!(tmp.is_empty(), "a refused upload left {tmp:?}");
}

#[tokio::test]
async fn a_stalled_sender_is_dropped_after_the_idle_time() {
    let dir = tempfile::tempdir().expect("dir");
    let files = Files::open(dir.path()).expect("open");
    let stalled = futures_util::stream::pending::<Result<bytes::Bytes, io::Error>>();
    let budget = Budget {
        idle: Duration::from_millis(50),
        ..budget(10)
    };
    let refused = files.receive(stalled, budget).await;
    assert!(matches!(refused, Err(ReceiveError::Stalled)));
}
