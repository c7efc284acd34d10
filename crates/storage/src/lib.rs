//! Staging and production containers per destination: atomic writes, promotion across
//! filesystems, locking.
//!
//! This is the only crate that builds paths under a destination's mount, and it builds them
//! only from validated names ([`DestinationName`](publish_types::DestinationName),
//! [`ProjectName`](publish_types::ProjectName), [`StartTime`](publish_types::StartTime)):
//!
//! ```text
//! <mount>/staging/<project>/<start>/data/outputs/...       the staged result
//! <mount>/production/<project>/<start>/data/outputs/...    the published result
//! ```
//!
//! In production `staging` and `production` are separate network volumes shared by several
//! replicas, so publishing is a copy across filesystems and locks must live on the volume.
//!
//! # Contract
//!
//! - **Locking.** Every operation that changes an area takes [`ProjectArea::lock`] first; two
//!   operations on the same `(destination, project, start time)` never interleave, in one
//!   process or across processes sharing the staging volume. Different areas are independent.
//!   The lock never waits: a held lock is [`StorageError::Busy`].
//! - **Staging is atomic, per dataset.** A project may have several datasets, each packaged
//!   on its own. [`ProjectLock::begin_dataset`] gives a work folder to write one dataset into,
//!   already holding what the project's other datasets staged; [`StagingWrite::commit`] records
//!   every file with its size and digest in a package record ([`RECORD_FILE`]), syncs it all
//!   and swaps it into place with one rename. The staging path holds the complete previous
//!   result or the complete new one at every instant; a dropped or failed write leaves the
//!   previous result, every dataset included, as it was.
//! - **Staged data is bound to its package.** Publish copies exactly the files the record
//!   lists, each checked against its recorded size and digest while it is copied; a missing,
//!   changed or unlisted file refuses the publish, naming it.
//! - **Publishing is atomic and verified.** [`ProjectLock::publish`] builds the production
//!   result in a work folder on the production volume, reading every byte once to hash it,
//!   writes the BagIt tag files beside it, and swaps it into place with one rename; only then is
//!   staging removed. A failure before that leaves production as it was and staging intact.
//! - **Publishing is idempotent.** Once published (staging gone), publish returns the recorded
//!   manifest again; with nothing staged or published it is [`StorageError::NothingToPublish`].
//! - **Interruptions are repaired.** A crash leaves at most entries in the area's work folders
//!   (`<container>/.publish-service/work/<project>/<start>/`: `tmp-*`, `old-*`, `trash-*`,
//!   `incoming-*`), each telling by its name and content what it holds; taking the lock repairs
//!   them to exactly the old state or the new one (`recover.rs`, docs/CONTRACT.md §7.1).
//!
//! Everything here is blocking file I/O: async callers use a blocking thread.

// Layers, each using only those above it in this list: the destinations and the file
// operations; the paths of a project run; the package record, the bag, the manifest; the file
// lock; recovery; the project lock; staging and publishing (ARCHITECTURE.md).
mod container;
mod destinations;
mod error;
pub mod failpoints;
mod fsops;
mod volume;

mod paths;

mod bag;
mod manifest;
mod record;

mod lock;

mod recover;

mod locked;

mod publish;
mod staging;

#[cfg(feature = "test-util")]
pub mod test_rig;

pub use bag::BagInfo;
pub use container::Container;
pub use destinations::{Destination, Destinations};
pub use error::StorageError;
pub use locked::ProjectLock;
pub use paths::ProjectArea;
pub use publish::{Manifest, PublishOptions, PublishedFile};
pub use record::{DatasetRecord, PackageRecord, RECORD_FILE, StagedFile, StagedTable};
pub use staging::{DatasetClaim, StagingWrite};
pub use volume::{FsKind, VolumeFacts};
