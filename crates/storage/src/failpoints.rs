//! Named points in the commit steps of package and publish where a test can stop the process,
//! as `kill -9` would: no destructor, no clean-up, nothing after the point is done. A restarted
//! process must then find the area in exactly the old state or the new one (the start-up sweep
//! and the next locked operation repair it), never lose approved data, and answer a retried
//! publish with the same manifest (docs/CONTRACT.md §7.1).
//!
//! Compiled in only with the `failpoints` feature (the server's tests turn it on through their
//! dev-dependency); without it `hit` is an empty inline function. With it, the environment
//! variable [`FAILPOINT_VAR`] names the one point to stop at; the process then exits at once
//! with status [`FAILPOINT_EXIT`] (`std::process::exit` runs no destructor of the stack).

/// The environment variable that arms a failpoint (only with the `failpoints` feature).
pub const FAILPOINT_VAR: &str = "PUBLISH_FAILPOINT";

/// The exit status of a process stopped at a failpoint.
pub const FAILPOINT_EXIT: i32 = 86;

/// Every failpoint, in the order an operation passes them.
pub const ALL: &[&str] = &[
    PACKAGE_RECORDED,
    PACKAGE_SWAPPED,
    PUBLISH_COPY_COPIED,
    PUBLISH_COPY_BAGGED,
    PUBLISH_COPY_SIDECAR,
    PUBLISH_COPY_SWAPPED,
    PUBLISH_COPY_STAGING_TRASHED,
    PUBLISH_MOVE_MOVED,
    PUBLISH_MOVE_BAGGED,
    PUBLISH_MOVE_SIDECAR,
    PUBLISH_MOVE_SWAPPED,
    PUBLISH_MOVE_RECORD_STRIPPED,
    SWAP_ASIDE,
];

/// Package: the new staged result and its record are complete and synced in the work folder;
/// nothing is swapped yet.
pub const PACKAGE_RECORDED: &str = "package.recorded";
/// Package: the new staged result is in place; the previous one is not deleted yet.
pub const PACKAGE_SWAPPED: &str = "package.swapped";
/// Publish by copy: every file is copied into the production work folder and synced.
pub const PUBLISH_COPY_COPIED: &str = "publish.copy.copied";
/// Publish by copy: the bag's tag files are written beside the copied data.
pub const PUBLISH_COPY_BAGGED: &str = "publish.copy.bagged";
/// Publish by copy: the manifest sidecar of the new result is written; nothing is swapped yet.
pub const PUBLISH_COPY_SIDECAR: &str = "publish.copy.sidecar";
/// Publish by copy: the new result is in production; the previous one and staging remain.
pub const PUBLISH_COPY_SWAPPED: &str = "publish.copy.swapped";
/// Publish by copy: the staged result is renamed to the trash; not deleted yet.
pub const PUBLISH_COPY_STAGING_TRASHED: &str = "publish.copy.staging-trashed";
/// Publish on one filesystem: the staged result (with its record) is moved into the production
/// work folder.
pub const PUBLISH_MOVE_MOVED: &str = "publish.move.moved";
/// Publish on one filesystem: the bag's tag files are written into the moved result.
pub const PUBLISH_MOVE_BAGGED: &str = "publish.move.bagged";
/// Publish on one filesystem: the manifest sidecar is written; nothing is swapped yet.
pub const PUBLISH_MOVE_SIDECAR: &str = "publish.move.sidecar";
/// Publish on one filesystem: the new result, still holding its package record, is in
/// production; the previous one waits in the work folder.
pub const PUBLISH_MOVE_SWAPPED: &str = "publish.move.swapped";
/// Publish on one filesystem: the package record is removed from the published result; the
/// previous result is not deleted yet.
pub const PUBLISH_MOVE_RECORD_STRIPPED: &str = "publish.move.record-stripped";
/// Any swap on a filesystem without `RENAME_EXCHANGE`: the previous result is renamed aside;
/// the new one is not renamed in yet.
pub const SWAP_ASIDE: &str = "swap.aside";

/// Stops the process here if the failpoint `name` is armed.
#[cfg(feature = "failpoints")]
pub(crate) fn hit(name: &'static str) {
    static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        #[allow(clippy::disallowed_methods)] // test-only: compiled with the failpoints feature
        let armed = std::env::var(FAILPOINT_VAR).ok();
        if let Some(point) = &armed {
            assert!(
                ALL.contains(&point.as_str()),
                "{FAILPOINT_VAR}={point} names no failpoint; known: {ALL:?}"
            );
        }
        armed
    });
    if armed.as_deref() == Some(name) {
        eprintln!("failpoint {name}: stopping the process");
        std::process::exit(FAILPOINT_EXIT);
    }
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_name: &'static str) {}
