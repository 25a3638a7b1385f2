use super::*;

#[test]
fn a_transaction_record_reads_back() {
    let txn = InFlight {
        txn_id: 42,
        keys: vec![vec![0, 255, b'a', 255, 1, 2], vec![], vec![7; 300]],
    };
    assert_eq!(InFlight::from_bytes(&txn.to_bytes()).unwrap(), txn);
    let mut cut = txn.to_bytes();
    cut.pop();
    assert!(InFlight::from_bytes(&cut).is_err());
    assert!(InFlight::from_bytes(&[1, 2]).is_err());
}
