use super::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natsws-mqtt-store-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(kind: StoreKind, key: &[u8], record: Option<&[u8]>) -> StoreWrite {
    StoreWrite {
        kind,
        key: key.to_vec(),
        record: record.map(<[u8]>::to_vec),
    }
}

#[test]
fn file_names_are_fixed_length_hex() {
    let name = file_name(b"$G\0a/b");
    assert!(is_record_name(&name), "{name}");
    assert_ne!(name, file_name(b"$G\0a/c"));
    // SHA-256 of the empty string.
    assert_eq!(
        file_name(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert!(!is_record_name("x.tmp"));
}

/// The last write queued for a file wins, a removal deletes it, and `finish` returns only
/// once everything is on disk.
#[test]
fn writes_are_applied_last_wins_and_finish_flushes() {
    let dir = temp_dir("writes");
    let store = MqttStore::open(&dir).unwrap();
    store.submit(write(StoreKind::Retained, b"k1", Some(b"one")));
    store.submit(write(StoreKind::Retained, b"k1", Some(b"two")));
    store.submit(write(StoreKind::Session, b"s1", Some(b"sess")));
    store.submit(write(StoreKind::Session, b"s2", Some(b"gone")));
    store.submit(write(StoreKind::Session, b"s2", None));
    store.submit(write(StoreKind::Session, b"never", None));
    store.finish();
    let root = dir.join("mqtt");
    assert_eq!(
        fs::read(root.join("retained").join(file_name(b"k1"))).unwrap(),
        b"two"
    );
    assert_eq!(
        fs::read(root.join("sessions").join(file_name(b"s1"))).unwrap(),
        b"sess"
    );
    assert!(!root.join("sessions").join(file_name(b"s2")).exists());
    let names: Vec<String> = fs::read_dir(root.join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [file_name(b"s1")], "no temp files left");
    fs::remove_dir_all(&dir).unwrap();
}

/// Damaged, oversize and foreign files are skipped (and left in place); a leftover temp file
/// is removed; nothing of them reaches the broker.
#[test]
fn bad_files_are_reported_and_skipped() {
    let dir = temp_dir("bad");
    let store = MqttStore::open(&dir).unwrap();
    let retained = dir.join("mqtt").join("retained");
    let sessions = dir.join("mqtt").join("sessions");
    fs::write(retained.join(file_name(b"garbage")), b"NWMQ\x01\x01garbage").unwrap();
    fs::write(sessions.join(file_name(b"empty")), b"").unwrap();
    fs::write(sessions.join("notes.txt"), b"hello").unwrap();
    let tmp = sessions.join(format!("{}{TMP_SUFFIX}", file_name(b"cut")));
    fs::write(&tmp, b"half").unwrap();
    let config = broker::Config {
        mqtt_persist: true,
        ..broker::Config::default()
    };
    let now = Instant::now();
    let mut broker = Broker::new(config, now);
    let oversize = vec![0u8; broker.mqtt_record_limit(StoreKind::Retained) + 1];
    fs::write(retained.join(file_name(b"big")), &oversize).unwrap();
    let loaded = store.load(&mut broker, now);
    assert_eq!(
        loaded,
        Loaded {
            retained: 0,
            sessions: 0,
            skipped: 4
        }
    );
    assert!(!tmp.exists());
    assert!(
        retained.join(file_name(b"garbage")).exists(),
        "kept for inspection"
    );
    assert_eq!(broker.poll_mqtt_store(), None);
    store.finish();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unusable_directory_is_an_error() {
    let dir = temp_dir("unusable");
    let file = dir.join("file");
    fs::write(&file, b"x").unwrap();
    let err = MqttStore::open(&file).unwrap_err();
    assert!(err.contains("MQTT store directory"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}
