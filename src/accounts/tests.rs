use argon2::{password_hash::PasswordHash, Argon2, PasswordHasher};

use super::DUMMY_HASH;

/// The hash checked for unknown accounts must cost what a real one does,
/// or the answer's time tells whether an account exists.
#[test]
fn the_dummy_hash_costs_what_a_real_one_does() {
    let salt = argon2::password_hash::SaltString::from_b64("c2FsdHNhbHRzYWx0").expect("salt");
    let real = Argon2::default()
        .hash_password(b"x", &salt)
        .expect("hashes");
    let dummy = PasswordHash::new(DUMMY_HASH).expect("parses");
    assert_eq!(dummy.algorithm, real.algorithm);
    assert_eq!(dummy.version, real.version);
    assert_eq!(dummy.params, real.params);
}
