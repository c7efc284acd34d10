//! Times a cross-filesystem publish of one large file against `sha512sum` of the same file.
//!
//! `cargo run --release -p publish-storage --example publish_bench -- [MiB] [staging-volume] [production-volume]`
//! (defaults: 512, `/dev/shm`, the system temporary folder). The staging volume should be a
//! different filesystem from the production volume, as in a deployment.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark that reports on stdout"
)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use publish_storage::{Destination, PublishOptions};
use publish_types::{DestinationName, ProjectName, StartTime};

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(512, |a| a.parse().unwrap());
    let staging_volume = args
        .next()
        .map_or_else(|| PathBuf::from("/dev/shm"), PathBuf::from);
    let production_volume = args.next().map_or_else(std::env::temp_dir, PathBuf::from);

    let mount = tempfile::tempdir_in(&production_volume).unwrap();
    let staging = tempfile::tempdir_in(&staging_volume).unwrap();
    std::os::unix::fs::symlink(staging.path(), mount.path().join("staging")).unwrap();
    std::fs::create_dir(mount.path().join("production")).unwrap();
    let destination = Destination::new(
        DestinationName::parse("BENCH").unwrap(),
        mount.path().to_path_buf(),
    );
    let area = destination.project(
        &ProjectName::parse("bench").unwrap(),
        &StartTime::parse("20250205_010101").unwrap(),
    );

    let lock = area.lock().unwrap();
    let claim = publish_storage::DatasetClaim {
        id: "bench".into(),
        name: None,
        schema_name: publish_types::ObjectName::parse("bench").unwrap(),
        tables: Vec::new(),
        format: publish_types::OutputFormat::Duckdb,
        shared_files: Vec::new(),
    };
    let write = lock
        .begin_dataset(claim, publish_hash::HashAlgorithm::Sha512)
        .unwrap();
    let chunk: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = write.dir().join("database.duckdb");
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for i in 0..mib {
            let mut c = chunk.clone();
            c[0] = i as u8;
            out.write_all(&c).unwrap();
        }
    }
    write.commit().unwrap();
    let staged = area.staging_dir().join("database.duckdb");

    let t = Instant::now();
    let out = Command::new("sha512sum").arg(&staged).output().unwrap();
    let sum_secs = t.elapsed().as_secs_f64();
    let expected = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    let t = Instant::now();
    let manifest = lock.publish(&PublishOptions::default()).unwrap();
    let publish_secs = t.elapsed().as_secs_f64();
    assert_eq!(manifest.files[0].hash_value, expected);

    let mb = (mib << 20) as f64 / 1e6;
    println!(
        "{mib} MiB: sha512sum {sum_secs:.2} s ({:.0} MB/s); publish (copy+hash+fsync) {publish_secs:.2} s ({:.0} MB/s); ratio {:.2}",
        mb / sum_secs,
        mb / publish_secs,
        publish_secs / sum_secs
    );
}
