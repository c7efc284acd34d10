//! FIPS 180-4 / FIPS 202 example vectors (as published by NIST) for SHA-512 and SHA3-512, and
//! BLAKE3's reference digests.

use publish_hash::{HashAlgorithm, Hasher, hash_reader};

const M448: &str = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
const M896: &str = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

/// `(message, SHA-512, SHA3-512)`.
fn cases() -> Vec<(Vec<u8>, &'static str, &'static str)> {
    vec![
        (
            b"".to_vec(),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
            "a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a615b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26",
        ),
        (
            b"abc".to_vec(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
        ),
        (
            M448.as_bytes().to_vec(),
            "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c33596fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445",
            "04a371e84ecfb5b8b77cb48610fca8182dd457ce6f326a0fd3d7ec2f1e91636dee691fbe0c985302ba1b0d8dc78c086346b533b49c030d99a27daf1139d6e75e",
        ),
        (
            M896.as_bytes().to_vec(),
            "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909",
            "afebb2ef542e6579c50cad06d2e578f9f8dd6881d7dc824d26360feebf18a4fa73e3261122948efcfd492e74e82e2189ed0fb440d187f382270cb455f21dd185",
        ),
        (
            vec![b'a'; 1_000_000],
            "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b",
            "3c3a876da14034ab60627c077bb98f7e120a2a5370212dffb3385a18d4f38859ed311d0a9d5141ce9cc5c66ee689b266a8aa18ace8282a0e0db596c90b0a7b87",
        ),
    ]
}

fn check(message: &[u8], algorithm: HashAlgorithm, expected: &str) {
    let what = format!("{algorithm} of {} bytes", message.len());

    let digest = hash_reader(message, algorithm).unwrap();
    assert_eq!(digest.hex, expected, "{what} via hash_reader");
    assert_eq!(digest.total_bytes, message.len() as u64, "{what}");
    assert_eq!(digest.algorithm, algorithm, "{what}");

    // Fed in uneven pieces, the incremental hasher must agree.
    let mut hasher = Hasher::new(algorithm);
    for piece in message.chunks(997) {
        hasher.update(piece);
    }
    assert_eq!(hasher.total_bytes(), message.len() as u64, "{what}");
    assert_eq!(hasher.finish().hex, expected, "{what} via Hasher in pieces");
}

#[test]
fn sha512_matches_fips_180_4_vectors() {
    for (message, sha512, _) in cases() {
        check(&message, HashAlgorithm::Sha512, sha512);
    }
}

#[test]
fn sha3_512_matches_fips_202_vectors() {
    for (message, _, sha3) in cases() {
        check(&message, HashAlgorithm::Sha3_512, sha3);
    }
}

#[test]
fn default_algorithm_is_sha512() {
    assert_eq!(HashAlgorithm::default(), HashAlgorithm::Sha512);
}

/// BLAKE3's reference digests of the empty input (the BLAKE3 team's `test_vectors.json`,
/// default hash mode) and of `abc`.
#[test]
fn blake3_matches_reference_vectors() {
    check(
        b"",
        HashAlgorithm::Blake3,
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
    );
    check(
        b"abc",
        HashAlgorithm::Blake3,
        "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
    );
}
