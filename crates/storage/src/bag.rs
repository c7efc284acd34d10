//! The published result as a BagIt 1.0 bag (RFC 8493), so that anyone who receives
//! `production/<project>/<start>/` can check it with any BagIt tool, without CR8TOR's RO-Crate.
//!
//! The payload is the result's `data/` folder as it is; beside it publish writes, into the
//! folder it is about to swap into production (so the bag is complete whenever the data is):
//!
//! - `bagit.txt`: the version and encoding;
//! - `manifest-<algorithm>.txt`: one line per payload file, exactly the digests publish
//!   answers (`manifest-sha512.txt` by default);
//! - `bag-info.txt`: `Bag-Software-Agent`, `Bagging-Date`, `External-Identifier`
//!   (`<project>/<start>`), `Payload-Oxum` and, when configured, `Source-Organization`;
//! - `tagmanifest-<algorithm>.txt`: the digests of the three files above.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use publish_hash::{HashAlgorithm, hash_reader};
use publish_types::PublishedFile;

use crate::error::{IoContext, StorageError};
use crate::fsops;

/// What a bag says about itself beyond its payload ([`crate::PublishOptions::bag`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BagInfo {
    /// `Source-Organization` in `bag-info.txt` (e.g. the TRE's operator); left out when `None`.
    /// One line: a value with a line break is refused by [`BagInfo::new`].
    pub source_organization: Option<String>,
    /// `Bag-Software-Agent`, e.g. `cr8tor-publish-service/0.1.0`.
    pub software_agent: String,
}

impl BagInfo {
    /// Checks that both values fit on one line of `bag-info.txt`.
    pub fn new(
        source_organization: Option<String>,
        software_agent: String,
    ) -> Result<Self, String> {
        for value in source_organization.iter().chain([&software_agent]) {
            if value.chars().any(char::is_control) {
                return Err(format!(
                    "{value:?} must be one line of text without control characters"
                ));
            }
        }
        Ok(Self {
            source_organization: source_organization.filter(|s| !s.trim().is_empty()),
            software_agent,
        })
    }
}

impl Default for BagInfo {
    fn default() -> Self {
        Self {
            source_organization: None,
            software_agent: concat!("cr8tor-publish-service/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// The folder every payload file is under, as BagIt requires.
pub(crate) const PAYLOAD_DIR: &str = "data/";

/// True for a path (relative, `/`-separated) of the bag's payload.
pub(crate) fn is_payload(rel: &str) -> bool {
    rel.starts_with(PAYLOAD_DIR)
}

/// Every name a tag file of ours may have at the top of a result, whatever the algorithm.
pub(crate) const TAG_FILES: &[&str] = &[
    "bagit.txt",
    "bag-info.txt",
    "manifest-sha512.txt",
    "manifest-sha3-512.txt",
    "tagmanifest-sha512.txt",
    "tagmanifest-sha3-512.txt",
];

/// Writes the tag files of a bag whose payload is `files` into `dir` (each created new and
/// synced, then the folder synced). `external_identifier` names the project run.
pub(crate) fn write(
    dir: &Path,
    files: &[PublishedFile],
    algorithm: HashAlgorithm,
    info: &BagInfo,
    external_identifier: &str,
) -> Result<(), StorageError> {
    let manifest_name = format!("manifest-{}.txt", algorithm.as_str());
    let manifest: String = files
        .iter()
        .map(|f| format!("{}  {}\n", f.hash_value, encode_path(&f.file_path)))
        .collect();
    let octets: u64 = files.iter().map(|f| f.total_bytes).sum();
    let mut bag_info = format!(
        "Bag-Software-Agent: {}\nBagging-Date: {}\nExternal-Identifier: {external_identifier}\n\
         Payload-Oxum: {octets}.{}\n",
        info.software_agent,
        chrono::Utc::now().format("%Y-%m-%d"),
        files.len(),
    );
    if let Some(organization) = &info.source_organization {
        bag_info.push_str(&format!("Source-Organization: {organization}\n"));
    }
    let tags = [
        (
            "bagit.txt",
            "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n".to_owned(),
        ),
        (manifest_name.as_str(), manifest),
        ("bag-info.txt", bag_info),
    ];
    let mut tag_manifest = String::new();
    for (name, text) in &tags {
        write_new(&dir.join(name), text)?;
        let digest =
            hash_reader(text.as_bytes(), algorithm).at("hash the tag file", dir.join(name))?;
        tag_manifest.push_str(&format!("{}  {name}\n", digest.hex));
    }
    write_new(
        &dir.join(format!("tagmanifest-{}.txt", algorithm.as_str())),
        &tag_manifest,
    )?;
    fsops::sync_dir(dir)
}

/// Removes every tag file of ours from the top of `dir` (a result going back into staging,
/// which holds only `data/` and its package record).
pub(crate) fn remove(dir: &Path) -> Result<(), StorageError> {
    for name in TAG_FILES {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at("remove the bag's tag file", &path),
        }
    }
    Ok(())
}

fn write_new(path: &Path, text: &str) -> Result<(), StorageError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .at("create", path)?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .at("write", path)
}

/// A payload path as a manifest line holds it: `%`, CR and LF percent-encoded (RFC 8493 §2.1.3).
fn encode_path(rel: &str) -> String {
    rel.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_are_percent_encoded_where_bagit_requires() {
        assert_eq!(encode_path("data/a b/100%.csv"), "data/a b/100%25.csv");
        assert_eq!(encode_path("data/x\ny\r.csv"), "data/x%0Ay%0D.csv");
    }

    #[test]
    fn bag_info_values_are_one_line() {
        assert!(BagInfo::new(Some("NHS TRE\nEvil: 1".into()), "a".into()).is_err());
        assert_eq!(
            BagInfo::new(Some("  ".into()), "agent".into())
                .unwrap()
                .source_organization,
            None
        );
    }
}
