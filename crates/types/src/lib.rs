//! Request/response contracts, validated names and table schemas of the CR8TOR Publish Service.
//!
//! This crate does no I/O. It accepts both request shapes of docs/CONTRACT.md §4 (the brief's flat
//! shape A and CR8TOR's nested shape B) and normalises them into one [`PackageRequest`],
//! [`PublishRequest`] or [`ValidateRequest`]. Holding one of those is proof that every rule of
//! docs/CONTRACT.md §5 that can be checked without I/O has been checked; what needs the outside
//! world (does the table exist, is the destination configured, is the host allowed by this
//! deployment) is checked by the crates that own that world.

mod error;
mod names;
mod request;
mod response;
mod schema;
mod source;
pub mod wire;

pub use error::{ParseError, RequestError};
pub use names::{
    DestinationName, Identifier, NameError, ObjectName, ProjectName, SecretName, StartTime,
    TableRef, quote,
};
pub use request::{
    Credentials, DatasetSpec, Destination, OutputFormat, PackageRequest, ProjectRef,
    PublishRequest, SourceSpec, TableSpec, ValidateRequest,
};
pub use response::{
    Envelope, ErrorPayload, PackagePayload, PublishPayload, Published, PublishedFile,
    PublishedTable, Retrieved, RetrievedFile, RetrievedTable, Status, ValidatePayload,
};
pub use schema::{ColumnSchema, StructField, TableSchema, UcType};
pub use source::{AllowedHost, HostAllowList, HostRefused, HostUrl, Scheme, SourceKind};
