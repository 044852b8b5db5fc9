use super::*;

fn key(seed: u8) -> SigningKey {
    secret_key_from_seed([seed; 32])
}

fn manifest() -> PackageManifest {
    PackageManifest {
        format: PACKAGE_FORMAT,
        name: "pump-anomaly".into(),
        version: Version::parse("2.1.0").unwrap(),
        asset_kinds: vec![AssetKind::Pump],
        feature_profile: "pump-v2".into(),
        inputs: vec!["rms".into(), "kurtosis".into()],
        outputs: MODEL_OUTPUTS.iter().map(|s| s.to_string()).collect(),
        threshold: 10.0,
        alarm_threshold: 20.0,
        self_test: vec![SelfTestVector {
            input: vec![1.0, 3.0],
            score: 2.5,
            tolerance: 1e-4,
        }],
        commissioning: CommissioningPolicy::Keep,
        created_at_ms: 1_764_000_000_000,
        files: Vec::new(),
    }
}

fn files() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "model.json".into(),
            br#"{"model_id": "pump-anomaly"}"#.to_vec(),
        ),
        (
            "model.onnx".into(),
            (0..=255u8).cycle().take(5000).collect(),
        ),
    ]
}

fn sealed() -> Vec<u8> {
    seal(manifest(), &files(), &key(7)).unwrap()
}

/// Where the files start in `sealed()`.
fn files_start(p: &[u8]) -> usize {
    let m = u32::from_le_bytes(p[8..12].try_into().unwrap()) as usize;
    let s = u32::from_le_bytes(p[12 + m..16 + m].try_into().unwrap()) as usize;
    16 + m + s
}

#[test]
fn a_sealed_package_opens_with_its_key_and_gives_back_its_files() {
    let p = sealed();
    let opened = open(&p, &[key(7).verifying_key()]).unwrap();
    assert_eq!(opened.files, files());
    assert_eq!(opened.key_id, key_id(&key(7).verifying_key()));
    assert_eq!(opened.manifest.files.len(), 2);
    assert_eq!(opened.manifest.files[1].size, 5000);
    assert_eq!(opened.sha256, sha256_hex(&p));
    assert_eq!(opened.file("model.onnx").unwrap().len(), 5000);
    // Another trusted key besides does not matter.
    assert!(open(&p, &[key(1).verifying_key(), key(7).verifying_key()]).is_ok());
}

#[test]
fn tampering_anywhere_is_refused_with_its_reason() {
    let p = sealed();
    let trusted = [key(7).verifying_key()];
    // A changed byte in a file: its hash.
    let mut file_byte = p.clone();
    let last = file_byte.len() - 1;
    file_byte[last] ^= 1;
    assert!(matches!(
        open(&file_byte, &trusted),
        Err(PackageError::FileHash { name, .. }) if name == "model.onnx"
    ));
    // A changed threshold in the manifest: the signature.
    let text = String::from_utf8_lossy(&p).into_owned();
    let at = text.find("\"threshold\": 10.0").unwrap() + "\"threshold\": ".len();
    let mut manifest_byte = p.clone();
    manifest_byte[at] = b'9';
    assert_eq!(
        open(&manifest_byte, &trusted).unwrap_err(),
        PackageError::BadSignature(key_id(&key(7).verifying_key()))
    );
    // Signed by a key nobody trusts.
    let stranger = seal(manifest(), &files(), &key(9)).unwrap();
    assert_eq!(
        open(&stranger, &trusted).unwrap_err(),
        PackageError::UnknownKey(key_id(&key(9).verifying_key()))
    );
    // The stranger's signature block on the real package.
    let mut swapped = p.clone();
    let start = files_start(&p);
    let sig_at = start - 128 - 2;
    swapped[sig_at..sig_at + 128]
        .copy_from_slice(&stranger[files_start(&stranger) - 130..files_start(&stranger) - 2]);
    assert!(matches!(
        open(&swapped, &trusted),
        Err(PackageError::BadSignature(_))
    ));
    // Bytes appended after the last file.
    let mut longer = p.clone();
    longer.extend_from_slice(b"extra");
    assert_eq!(
        open(&longer, &trusted).unwrap_err(),
        PackageError::TrailingBytes(5)
    );
    assert_eq!(
        open(b"PK\x03\x04 a zip file", &trusted).unwrap_err(),
        PackageError::NotAPackage
    );
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    let p = sealed();
    let trusted = [key(7).verifying_key()];
    // Every cut through the header; through the files, every 37th (each
    // costs a signature check).
    let cuts = (0..files_start(&p) + 64).chain((files_start(&p) + 64..p.len()).step_by(37));
    for len in cuts {
        let err = open(&p[..len], &trusted).expect_err("a truncated package opened");
        assert!(
            matches!(
                err,
                PackageError::Truncated { .. }
                    | PackageError::Manifest(_)
                    | PackageError::SignatureBlock(_)
            ),
            "cut at {len}: {err}"
        );
    }
}

#[test]
fn oversize_packages_and_parts_are_refused_before_parsing() {
    let big = vec![0u8; MAX_PACKAGE_BYTES + 1];
    assert!(matches!(
        open(&big, &[]),
        Err(PackageError::TooLarge { .. })
    ));
    let mut p = PACKAGE_MAGIC.to_vec();
    p.extend_from_slice(&(MAX_MANIFEST_BYTES as u32 + 1).to_le_bytes());
    assert!(matches!(
        open(&p, &[]),
        Err(PackageError::PartTooLarge {
            what: "manifest",
            ..
        })
    ));
}

/// A package whose manifest is `json`, signed properly by key 7.
fn with_manifest_json(json: &str) -> Vec<u8> {
    let sig = key(7).sign(json.as_bytes());
    let block = serde_json::to_vec(&SignatureBlock {
        key_id: key_id(&key(7).verifying_key()),
        ed25519: hex(&sig.to_bytes()),
    })
    .unwrap();
    let mut p = PACKAGE_MAGIC.to_vec();
    for part in [json.as_bytes(), &block] {
        p.extend_from_slice(&(part.len() as u32).to_le_bytes());
        p.extend_from_slice(part);
    }
    p
}

#[test]
fn unknown_formats_and_fields_are_refused_by_name() {
    let trusted = [key(7).verifying_key()];
    let mut v = serde_json::to_value(manifest()).unwrap();
    v["format"] = 2.into();
    assert_eq!(
        open(&with_manifest_json(&v.to_string()), &trusted).unwrap_err(),
        PackageError::UnknownFormat(2)
    );
    let mut v = serde_json::to_value(manifest()).unwrap();
    v["run_as_root"] = true.into();
    let err = open(&with_manifest_json(&v.to_string()), &trusted).unwrap_err();
    assert!(
        err.to_string().contains("unknown field `run_as_root`"),
        "{err}"
    );
    let mut v = serde_json::to_value(manifest()).unwrap();
    v["version"] = "2.1".into();
    let err = open(&with_manifest_json(&v.to_string()), &trusted).unwrap_err();
    assert!(err.to_string().contains("MAJOR.MINOR.PATCH"), "{err}");
    let mut v = serde_json::to_value(manifest()).unwrap();
    v["files"] = serde_json::json!([{"name": "../../etc/passwd", "size": 0, "sha256": ""}]);
    let err = open(&with_manifest_json(&v.to_string()), &trusted).unwrap_err();
    assert!(err.to_string().contains("not a plain file name"), "{err}");
    let mut bad = manifest();
    bad.self_test[0].input.pop();
    assert!(seal(bad, &files(), &key(7)).is_err());
}

#[test]
fn versions_order_numerically_and_parse_strictly() {
    let v = |s| Version::parse(s).unwrap();
    assert!(v("2.10.0") > v("2.9.9"));
    assert!(v("10.0.0") > v("9.99.99"));
    assert_eq!(v("1.2.3").to_string(), "1.2.3");
    for bad in ["1.2", "1.2.3.4", "01.2.3", "1.-2.3", "1.2.x", "", "1..3"] {
        assert!(Version::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn keys_round_trip_through_their_text_forms() {
    let k = key(3);
    let back = parse_secret_key(&format_secret_key(&k)).unwrap();
    assert_eq!(back.to_bytes(), k.to_bytes());
    let public = parse_public_key(&format_public_key(&k.verifying_key())).unwrap();
    assert_eq!(public, k.verifying_key());
    assert!(parse_public_key("ed25519:abc").is_err());
    assert!(parse_secret_key(&format_public_key(&k.verifying_key())).is_err());
    assert!(key_id(&public).starts_with("pdm-"));
    assert_eq!(key_id(&public).len(), 20);
}
