//! The algorithm's names: serde form, `Display` and `FromStr`.

use publish_hash::{HashAlgorithm, HashError};

#[test]
fn serde_names_are_lowercase() {
    for (alg, json) in [
        (HashAlgorithm::Sha512, "\"sha512\""),
        (HashAlgorithm::Sha3_512, "\"sha3-512\""),
        (HashAlgorithm::Blake3, "\"blake3\""),
    ] {
        assert_eq!(serde_json::to_string(&alg).unwrap(), json);
        assert_eq!(serde_json::from_str::<HashAlgorithm>(json).unwrap(), alg);
        assert_eq!(format!("\"{alg}\""), json);
    }
    assert!(serde_json::from_str::<HashAlgorithm>("\"md5\"").is_err());
}

#[test]
fn parse_accepts_common_spellings_only() {
    for (given, expected) in [
        ("sha512", Some(HashAlgorithm::Sha512)),
        ("SHA-512", Some(HashAlgorithm::Sha512)),
        ("sha3-512", Some(HashAlgorithm::Sha3_512)),
        ("SHA3_512", Some(HashAlgorithm::Sha3_512)),
        ("sha256", None),
        // The package record's digest, never an answer: not configurable.
        ("blake3", None),
        ("", None),
    ] {
        let parsed = given.parse::<HashAlgorithm>();
        match expected {
            Some(alg) => assert_eq!(parsed, Ok(alg), "{given:?}"),
            None => assert_eq!(
                parsed,
                Err(HashError::UnknownAlgorithm {
                    given: given.to_owned()
                }),
                "{given:?}"
            ),
        }
    }
}
