//! The parts of Opal's JSON this client reads (docs/OPAL-WIRE.md §4). Tolerant: unknown fields
//! are ignored and absent ones take defaults, since Opal leaves out empty lists and unset
//! optional fields.

use serde::Deserialize;

/// `SubjectCredentialsDto`, as `GET /system/subject-credential/{name}` answers it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct SubjectCredentials {
    pub(crate) authentication_type: Option<String>,
    pub(crate) groups: Vec<String>,
    /// `optional bool enabled = 6 [default = true]`: absent means enabled.
    pub(crate) enabled: Option<bool>,
}

/// `Opal.Acl`: one subject's permissions on one node.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Acl {
    pub(crate) subject: AclSubject,
}

/// `Opal.Subject`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AclSubject {
    pub(crate) principal: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

impl Acl {
    pub(crate) fn is_group(&self, group: &str) -> bool {
        self.subject.kind == "GROUP" && self.subject.principal == group
    }
}

/// `Projects.ResourceReferenceDto`. `credentials` is present only where the caller may edit
/// the reference and (from Opal 5.1) the list was asked for with `safe=false`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ResourceReference {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) provider: String,
    pub(crate) factory: String,
    pub(crate) parameters: String,
    pub(crate) credentials: Option<String>,
}
