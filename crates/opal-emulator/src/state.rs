//! What the emulator holds (projects, users, groups, permissions, resource references) and the
//! snapshot tests read ([`OpalState`]). The store follows Opal's services: groups are saved with
//! the users that name them and outlive them (`SubjectCredentialsServiceImpl`), a permission
//! replaces the subject's others on the same node (`AbstractPermissionsResource`), and a
//! resource reference is saved over any of the same project and name (`OrientDbServiceImpl.save`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

/// A password held in memory, never printed.
#[derive(Clone)]
pub(crate) struct Password(String);

impl Password {
    pub(crate) fn new(password: impl Into<String>) -> Password {
        Password(password.into())
    }

    pub(crate) fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// How a subject signs in (`SubjectCredentialsDto.AuthenticationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthType {
    Password,
    Certificate,
}

impl AuthType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthType::Password => "PASSWORD",
            AuthType::Certificate => "CERTIFICATE",
        }
    }
}

/// `SubjectAcl.SubjectType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum SubjectType {
    User,
    Group,
}

impl SubjectType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SubjectType::User => "USER",
            SubjectType::Group => "GROUP",
        }
    }

    /// JAX-RS converts an enum query parameter with `valueOf`: exact, case-sensitive names.
    pub(crate) fn parse(value: &str) -> Option<SubjectType> {
        match value {
            "USER" => Some(SubjectType::User),
            "GROUP" => Some(SubjectType::Group),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub(crate) name: String,
    pub(crate) title: String,
    pub(crate) description: Option<String>,
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Subject {
    pub(crate) name: String,
    pub(crate) auth_type: AuthType,
    pub(crate) password: Option<Password>,
    pub(crate) groups: BTreeSet<String>,
    pub(crate) enabled: bool,
    pub(crate) created: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Acl {
    pub(crate) node: String,
    pub(crate) subject_type: SubjectType,
    pub(crate) principal: String,
    pub(crate) permission: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub(crate) project: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) provider: String,
    pub(crate) factory: String,
    pub(crate) parameters: String,
    pub(crate) credentials: String,
    pub(crate) created: DateTime<Utc>,
    pub(crate) updated: DateTime<Utc>,
}

/// Everything an Opal server would persist, for the calls the emulator answers.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) projects: BTreeMap<String, Project>,
    pub(crate) subjects: BTreeMap<String, Subject>,
    /// Group name → member names. A group is created when a user first names it, and stays
    /// when its last member leaves.
    pub(crate) groups: BTreeMap<String, BTreeSet<String>>,
    pub(crate) acls: BTreeSet<Acl>,
    /// (project, name) → reference.
    pub(crate) resources: BTreeMap<(String, String), Resource>,
}

/// The ACL node of the server-wide DataSHIELD permissions.
pub(crate) const DATASHIELD_NODE: &str = "/datashield";

/// The ACL node of a project's resource permissions.
pub(crate) fn resources_node(project: &str) -> String {
    format!("/project/{project}/resources")
}

impl Store {
    /// Saves `subject` as `SubjectCredentialsServiceImpl.save` does: an absent password keeps
    /// the stored one; groups the subject left lose it as a member (and stay); groups it names
    /// are created or gain it.
    pub(crate) fn save_subject(&mut self, mut subject: Subject) {
        if let Some(previous) = self.subjects.get(&subject.name) {
            if subject.password.is_none() {
                subject.password = previous.password.clone();
            }
            subject.created = previous.created;
            for left in previous.groups.difference(&subject.groups) {
                if let Some(members) = self.groups.get_mut(left) {
                    members.remove(&subject.name);
                }
            }
        }
        for group in subject.groups.iter().filter(|g| !g.is_empty()) {
            self.groups
                .entry(group.clone())
                .or_default()
                .insert(subject.name.clone());
        }
        self.subjects.insert(subject.name.clone(), subject);
    }

    /// `setPermission`: the subject's permissions on `node` are replaced by `permission`.
    pub(crate) fn set_permission(
        &mut self,
        node: &str,
        subject_type: SubjectType,
        principal: &str,
        permission: &str,
    ) {
        self.acls.retain(|acl| {
            !(acl.node == node && acl.subject_type == subject_type && acl.principal == principal)
        });
        self.acls.insert(Acl {
            node: node.to_owned(),
            subject_type,
            principal: principal.to_owned(),
            permission: permission.to_owned(),
        });
    }

    /// `getNodePermissions`: one entry per subject with permissions on `node`, optionally of
    /// one subject type.
    pub(crate) fn node_permissions(
        &self,
        node: &str,
        subject_type: Option<SubjectType>,
    ) -> Vec<PermissionState> {
        let mut by_subject: BTreeMap<(SubjectType, &str), Vec<String>> = BTreeMap::new();
        for acl in self
            .acls
            .iter()
            .filter(|a| a.node == node && subject_type.is_none_or(|t| a.subject_type == t))
        {
            by_subject
                .entry((acl.subject_type, acl.principal.as_str()))
                .or_default()
                .push(acl.permission.clone());
        }
        by_subject
            .into_iter()
            .map(|((t, principal), actions)| PermissionState {
                principal: principal.to_owned(),
                subject_type: t.as_str().to_owned(),
                actions,
            })
            .collect()
    }

    pub(crate) fn snapshot(&self) -> OpalState {
        let mut resource_permissions = BTreeMap::new();
        for project in self.projects.keys() {
            let perms = self.node_permissions(&resources_node(project), None);
            if !perms.is_empty() {
                resource_permissions.insert(project.clone(), perms);
            }
        }
        OpalState {
            projects: self
                .projects
                .values()
                .map(|p| ProjectState {
                    name: p.name.clone(),
                    title: p.title.clone(),
                    description: p.description.clone(),
                    tags: p.tags.clone(),
                })
                .collect(),
            subject_credentials: self
                .subjects
                .values()
                .map(|s| SubjectCredentialState {
                    name: s.name.clone(),
                    authentication_type: s.auth_type.as_str().to_owned(),
                    groups: s.groups.iter().cloned().collect(),
                    enabled: s.enabled,
                    has_password: s.password.is_some(),
                })
                .collect(),
            groups: self
                .groups
                .iter()
                .map(|(name, members)| GroupState {
                    name: name.clone(),
                    subject_credentials: members.iter().cloned().collect(),
                })
                .collect(),
            datashield_permissions: self.node_permissions(DATASHIELD_NODE, None),
            resource_permissions,
            resources: self
                .resources
                .values()
                .map(|r| ResourceState {
                    project: r.project.clone(),
                    name: r.name.clone(),
                    description: r.description.clone(),
                    provider: r.provider.clone(),
                    factory: r.factory.clone(),
                    parameters: r.parameters.clone(),
                    credentials: r.credentials.clone(),
                    created: crate::wire::instant(r.created),
                    updated: crate::wire::instant(r.updated),
                })
                .collect(),
        }
    }
}

/// A snapshot of everything the emulator holds, for tests (`OpalEmulator::state`, and
/// `GET /emulator/state` as JSON). Passwords are never in it: use `OpalEmulator::password_ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpalState {
    /// Projects, by name.
    pub projects: Vec<ProjectState>,
    /// Users stored in Opal's database (not the administrator of the configuration).
    pub subject_credentials: Vec<SubjectCredentialState>,
    /// Groups, by name, with their members.
    pub groups: Vec<GroupState>,
    /// The server-wide DataSHIELD permissions (node `/datashield`).
    pub datashield_permissions: Vec<PermissionState>,
    /// Each project's resource permissions (node `/project/{p}/resources`), projects without
    /// any left out.
    pub resource_permissions: BTreeMap<String, Vec<PermissionState>>,
    /// Resource references, by project then name, with their stored parameters and credentials.
    pub resources: Vec<ResourceState>,
}

/// One project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectState {
    /// Its name.
    pub name: String,
    /// Its title.
    pub title: String,
    /// Its description, if any.
    pub description: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
}

/// One user of Opal's database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectCredentialState {
    /// Its name.
    pub name: String,
    /// `PASSWORD` or `CERTIFICATE`.
    pub authentication_type: String,
    /// Its groups, sorted.
    pub groups: Vec<String>,
    /// Whether it may sign in.
    pub enabled: bool,
    /// Whether a password is stored (its value is never shown).
    pub has_password: bool,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupState {
    /// Its name.
    pub name: String,
    /// Its members' names, sorted.
    pub subject_credentials: Vec<String>,
}

/// The permissions of one subject on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermissionState {
    /// The user or group name.
    pub principal: String,
    /// `USER` or `GROUP`.
    pub subject_type: String,
    /// The permissions, e.g. `DATASHIELD_USE`, `RESOURCES_VIEW`.
    pub actions: Vec<String>,
}

/// One resource reference, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceState {
    /// Its project.
    pub project: String,
    /// Its name.
    pub name: String,
    /// Its description, if any.
    pub description: Option<String>,
    /// The provider, e.g. `resourcer`.
    pub provider: String,
    /// The factory, e.g. `sql`.
    pub factory: String,
    /// The parameters string exactly as received.
    pub parameters: String,
    /// The credentials string exactly as received (`""` when none was sent).
    pub credentials: String,
    /// When it was created (ISO-8601, UTC).
    pub created: String,
    /// When it was last saved (ISO-8601, UTC).
    pub updated: String,
}

impl ResourceState {
    /// The parameters parsed as JSON, if they are JSON.
    pub fn parameters_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.parameters).ok()
    }

    /// The credentials parsed as JSON, if they are JSON.
    pub fn credentials_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.credentials).ok()
    }
}

impl OpalState {
    /// The project named `name`.
    pub fn project(&self, name: &str) -> Option<&ProjectState> {
        self.projects.iter().find(|p| p.name == name)
    }

    /// The user named `name`.
    pub fn subject(&self, name: &str) -> Option<&SubjectCredentialState> {
        self.subject_credentials.iter().find(|s| s.name == name)
    }

    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&GroupState> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The resource `name` of `project`.
    pub fn resource(&self, project: &str, name: &str) -> Option<&ResourceState> {
        self.resources
            .iter()
            .find(|r| r.project == project && r.name == name)
    }

    /// The DataSHIELD permissions of group `group`.
    pub fn datashield_group_actions(&self, group: &str) -> Vec<String> {
        group_actions(&self.datashield_permissions, group)
    }

    /// The resource permissions of group `group` in `project`.
    pub fn resource_group_actions(&self, project: &str, group: &str) -> Vec<String> {
        self.resource_permissions
            .get(project)
            .map(|perms| group_actions(perms, group))
            .unwrap_or_default()
    }
}

fn group_actions(perms: &[PermissionState], group: &str) -> Vec<String> {
    perms
        .iter()
        .filter(|p| p.subject_type == "GROUP" && p.principal == group)
        .flat_map(|p| p.actions.iter().cloned())
        .collect()
}
