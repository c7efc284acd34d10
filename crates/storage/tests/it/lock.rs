//! The project lock excludes other holders in this process and in other processes, and is
//! released when its holder drops it or dies.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use publish_storage::{Destination, StorageError};
use publish_types::{DestinationName, ProjectName, StartTime};

use crate::{PROJECT, START, TestDestination};

fn assert_busy<T: std::fmt::Debug>(result: Result<T, StorageError>) {
    match result {
        Err(StorageError::Busy {
            destination,
            project,
            start,
        }) => {
            assert_eq!(
                (destination.as_str(), project.as_str(), start.as_str()),
                ("LSC", PROJECT, START)
            );
        }
        other => panic!("expected Busy, got {other:?}"),
    }
}

#[test]
fn second_lock_in_the_same_process_is_busy() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    let lock = area.lock().unwrap();
    assert_busy(area.lock());
    // Another thread, and another area value for the same project, are excluded too.
    let other = dest.area();
    std::thread::scope(|s| {
        s.spawn(|| assert_busy(other.lock())).join().unwrap();
    });
    // Other start times and projects are independent.
    let _a = dest.area_for(PROJECT, "20250205_020202").lock().unwrap();
    let _b = dest.area_for("Pr005", START).lock().unwrap();
    drop(lock);
    let _again = area.lock().unwrap();
}

#[test]
fn a_staging_write_keeps_the_lock_held() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    let lock = area.lock().unwrap();
    let write = crate::begin(&lock).unwrap();
    drop(lock);
    assert_busy(area.lock());
    write.commit().unwrap();
    area.lock().unwrap();
}

/// Environment variable that turns [`lock_holder_child`] into the child process's helper.
const CHILD_MOUNT: &str = "PUBLISH_STORAGE_TEST_LOCK_HOLDER_MOUNT";

/// In the child: takes the lock, signals readiness by creating `<mount>/ready`, and holds the
/// lock until its standard input is closed. In a normal test run it does nothing.
#[test]
fn lock_holder_child() {
    #[allow(
        clippy::disallowed_methods,
        reason = "the helper mode is chosen by the parent test, not configuration"
    )]
    let Some(mount) = std::env::var_os(CHILD_MOUNT) else {
        return;
    };
    let mount = PathBuf::from(mount);
    let destination = Destination::new(DestinationName::parse("LSC").unwrap(), mount.clone());
    let area = destination.project(
        &ProjectName::parse(PROJECT).unwrap(),
        &StartTime::parse(START).unwrap(),
    );
    let lock = area.lock().unwrap();
    fs::write(mount.join("ready"), b"").unwrap();
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink).unwrap();
    drop(lock);
}

fn spawn_holder(mount: &Path) -> Child {
    let _ = fs::remove_file(mount.join("ready"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock::lock_holder_child",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_MOUNT, mount)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !mount.join("ready").exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the lock-holding child exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the lock-holding child did not take the lock within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn lock_excludes_another_process_until_it_exits_or_dies() {
    let dest = TestDestination::one_filesystem();
    let area = dest.area();
    let mount = dest.destination.mount();

    // The child exits normally.
    let mut child = spawn_holder(mount);
    assert_busy(area.lock());
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    drop(area.lock().unwrap());

    // The child is killed while holding the lock: the OS releases it.
    let mut child = spawn_holder(mount);
    assert_busy(area.lock());
    child.kill().unwrap();
    child.wait().unwrap();
    drop(area.lock().unwrap());
}
