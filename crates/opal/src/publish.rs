//! The publish sequence (docs/OPAL-WIRE.md §12): the project, the group through
//! `dsuser_default`, DataSHIELD use for the group, one resource reference per table, and the
//! group's view of the project's resources. Each step reads first and writes only what is
//! missing or different, so a publish run twice changes nothing the second time, and one that
//! failed half-way is finished by running it again.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::OpalClient;
use crate::error::OpalError;
use crate::names::{
    DEFAULT_USER, encode_segment, group_name, opal_project_name_allowed, resource_name,
};
use crate::redact::Redactor;
use crate::wire;

/// Where the published tables live: the PostgreSQL database Opal's R servers connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseLocation {
    /// Host name as Opal's R servers reach it.
    pub host: String,
    /// Port (written into the resource as a JSON number).
    pub port: u16,
    /// Database name.
    pub database: String,
}

/// The PostgreSQL role Opal's resources read as.
#[derive(Debug, Clone)]
pub struct ReadOnlyRole {
    /// Role name.
    pub username: String,
    /// Its password, stored in each resource's credentials.
    pub password: SecretString,
}

/// One PostgreSQL table to publish.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PgTable {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub table: String,
}

/// What to publish.
#[derive(Debug, Clone)]
pub struct OpalPublishRequest {
    /// The Opal project: the CR8TOR project name.
    pub project: String,
    /// The group given access: `<project>_group` (see [`OpalPublishRequest::new`]).
    pub group: String,
    /// Where the tables are.
    pub database: DatabaseLocation,
    /// Who Opal reads them as.
    pub reader: ReadOnlyRole,
    /// The tables, one resource each, answered in this order.
    pub tables: Vec<PgTable>,
}

impl OpalPublishRequest {
    /// A request for `project`, with group `<project>_group`.
    pub fn new(
        project: impl Into<String>,
        database: DatabaseLocation,
        reader: ReadOnlyRole,
        tables: Vec<PgTable>,
    ) -> OpalPublishRequest {
        let project = project.into();
        OpalPublishRequest {
            group: group_name(&project),
            project,
            database,
            reader,
            tables,
        }
    }
}

/// One published table, in the words of the service's publish answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpalPublication {
    /// `<schema>.<table>`.
    pub postgresql_table_name: String,
    /// `tre_postgresql_<schema>_<table>`.
    pub opal_resource_name: String,
    /// The Opal project.
    pub opal_project_name: String,
    /// The group given access.
    pub opal_group_name: String,
}

/// One table and the resource it becomes.
struct Planned<'a> {
    table: &'a PgTable,
    name: String,
}

impl OpalClient {
    /// Publishes `request`'s tables to Opal, step by step, creating or changing only what is
    /// missing or different:
    ///
    /// 1. the project (`GET`, else `POST /projects` with the reference's title and description);
    /// 2. the group: if `GET /system/group/{g}` finds none, user `dsuser_default` gets it — the
    ///    user is created with a random password within Opal's rule if missing, or the group
    ///    added to its others, its enabled flag kept;
    /// 3. `DATASHIELD_USE` for the group, unless the group already has a DataSHIELD permission
    ///    (an `ALL` is not downgraded);
    /// 4. one `resourcer`/`sql` resource per table: created if missing, updated (`PUT`) if its
    ///    connection parameters, credentials, description, provider or factory differ, left
    ///    alone if identical; one of the same name that reads another schema or table is a
    ///    [`OpalError::Conflict`] and is left alone;
    /// 5. `RESOURCES_VIEW` for the group on the project's resources, unless it has one.
    ///
    /// Answers one [`OpalPublication`] per distinct table, in request order; with no table it
    /// answers an empty list without calling Opal. Nothing is undone on failure: calling again
    /// completes the work. Two publishes of one project may run at once: a step that loses a
    /// race to create (project, user) reads the winner's result and goes on.
    pub async fn publish(
        &self,
        request: &OpalPublishRequest,
    ) -> Result<Vec<OpalPublication>, OpalError> {
        let planned = plan(request)?;
        if planned.is_empty() {
            return Ok(Vec::new());
        }
        let mut redactor = self
            .redactor()
            .with(request.reader.password.expose_secret());
        let credentials = json!({
            "username": request.reader.username,
            "password": request.reader.password.expose_secret(),
        })
        .to_string();
        redactor.add(&credentials);

        self.ensure_project(&request.project, &redactor).await?;
        self.ensure_group(&request.group, &redactor).await?;
        self.ensure_datashield_use(&request.group, &redactor)
            .await?;
        self.ensure_resources(request, &planned, &credentials, &redactor)
            .await?;
        self.ensure_resources_view(&request.project, &request.group, &redactor)
            .await?;
        Ok(planned
            .iter()
            .map(|p| OpalPublication {
                postgresql_table_name: format!("{}.{}", p.table.schema, p.table.table),
                opal_resource_name: p.name.clone(),
                opal_project_name: request.project.clone(),
                opal_group_name: request.group.clone(),
            })
            .collect())
    }

    async fn ensure_project(&self, project: &str, redactor: &Redactor) -> Result<(), OpalError> {
        let path = format!("/project/{}", encode_segment(project));
        let step = format!("reading Opal project `{project}`");
        let answer = self.send(&step, Method::GET, &path, &[], None).await?;
        match answer.status {
            StatusCode::OK => return Ok(()),
            StatusCode::NOT_FOUND => {}
            _ => return Err(self.refusal(&step, &answer, redactor)),
        }
        let step = format!("creating Opal project `{project}`");
        let body = json!({
            "name": project,
            "title": project,
            "description": format!("Data Access Request for project {project}"),
        });
        let answer = self
            .send(&step, Method::POST, "/projects", &[], Some(&body))
            .await?;
        if matches!(answer.status, StatusCode::CREATED | StatusCode::OK) {
            tracing::info!(project, "created Opal project");
            return Ok(());
        }
        let refusal = self.refusal(&step, &answer, redactor);
        if answer.status != StatusCode::BAD_REQUEST {
            return Err(refusal);
        }
        // Another publish may have created it since: Opal says "Project already exists".
        let recheck = format!("reading Opal project `{project}` again");
        let again = self.send(&recheck, Method::GET, &path, &[], None).await?;
        if again.status == StatusCode::OK {
            return Ok(());
        }
        Err(refusal)
    }

    async fn ensure_group(&self, group: &str, redactor: &Redactor) -> Result<(), OpalError> {
        let step = format!("reading Opal group `{group}`");
        let path = format!("/system/group/{}", encode_segment(group));
        let answer = self.send(&step, Method::GET, &path, &[], None).await?;
        match answer.status {
            StatusCode::OK => return Ok(()),
            StatusCode::NOT_FOUND => {}
            _ => return Err(self.refusal(&step, &answer, redactor)),
        }
        let user = match self.read_default_user(redactor).await? {
            Some(user) => user,
            None => {
                let password = crate::password::generate_password();
                let redactor = redactor.with(password.expose_secret());
                let step = format!("creating Opal user `{DEFAULT_USER}` with group `{group}`");
                let body = json!({
                    "name": DEFAULT_USER,
                    "authenticationType": "PASSWORD",
                    "password": password.expose_secret(),
                    "groups": [group],
                    "enabled": true,
                });
                let answer = self
                    .send(
                        &step,
                        Method::POST,
                        "/system/subject-credentials",
                        &[],
                        Some(&body),
                    )
                    .await?;
                if matches!(answer.status, StatusCode::OK | StatusCode::CREATED) {
                    tracing::info!(
                        group,
                        user = DEFAULT_USER,
                        "created Opal user carrying the group"
                    );
                    return Ok(());
                }
                if answer.status != StatusCode::CONFLICT {
                    return Err(self.refusal(&step, &answer, &redactor));
                }
                // Created meanwhile by another publish: add the group to it instead.
                self.read_default_user(&redactor)
                    .await?
                    .ok_or_else(|| OpalError::Protocol {
                        step: step.clone(),
                        message: format!("Opal says `{DEFAULT_USER}` exists but does not show it"),
                    })?
            }
        };
        if user.groups.iter().any(|g| g == group) {
            return Ok(());
        }
        let mut groups: BTreeSet<String> = user.groups.into_iter().collect();
        groups.insert(group.to_owned());
        let step = format!("adding group `{group}` to user `{DEFAULT_USER}`");
        let body = json!({
            "name": DEFAULT_USER,
            "authenticationType": user.authentication_type.unwrap_or_else(|| "PASSWORD".into()),
            "groups": groups,
            "enabled": user.enabled.unwrap_or(true),
        });
        let path = format!("/system/subject-credential/{DEFAULT_USER}");
        let answer = self
            .send(&step, Method::PUT, &path, &[], Some(&body))
            .await?;
        self.expect(
            &step,
            answer,
            &[StatusCode::OK, StatusCode::NO_CONTENT],
            redactor,
        )?;
        tracing::info!(
            group,
            user = DEFAULT_USER,
            "added the group to the Opal user"
        );
        Ok(())
    }

    async fn read_default_user(
        &self,
        redactor: &Redactor,
    ) -> Result<Option<wire::SubjectCredentials>, OpalError> {
        let step = format!("reading Opal user `{DEFAULT_USER}`");
        let path = format!("/system/subject-credential/{DEFAULT_USER}");
        let answer = self.send(&step, Method::GET, &path, &[], None).await?;
        match answer.status {
            StatusCode::OK => self.parse(&step, &answer).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.refusal(&step, &answer, redactor)),
        }
    }

    async fn ensure_datashield_use(
        &self,
        group: &str,
        redactor: &Redactor,
    ) -> Result<(), OpalError> {
        let path = "/system/permissions/datashield";
        let step = "reading Opal's DataSHIELD permissions".to_owned();
        let answer = self
            .send(&step, Method::GET, path, &[("type", "GROUP")], None)
            .await?;
        let answer = self.expect(&step, answer, &[StatusCode::OK], redactor)?;
        let acls: Vec<wire::Acl> = self.parse(&step, &answer)?;
        if acls.iter().any(|a| a.is_group(group)) {
            return Ok(());
        }
        let step = format!("granting DataSHIELD use to group `{group}`");
        let query = [
            ("type", "GROUP"),
            ("permission", "DATASHIELD_USE"),
            ("principal", group),
        ];
        let answer = self.send(&step, Method::POST, path, &query, None).await?;
        self.expect(
            &step,
            answer,
            &[StatusCode::OK, StatusCode::NO_CONTENT],
            redactor,
        )?;
        tracing::info!(group, "granted DataSHIELD use");
        Ok(())
    }

    async fn ensure_resources(
        &self,
        request: &OpalPublishRequest,
        planned: &[Planned<'_>],
        credentials: &str,
        redactor: &Redactor,
    ) -> Result<(), OpalError> {
        let project = &request.project;
        let list_path = format!("/project/{}/resources", encode_segment(project));
        let step = format!("listing the resources of Opal project `{project}`");
        // `safe=false`: Opal 5.1 and later show credentials only then (older ones ignore it).
        let answer = self
            .send(&step, Method::GET, &list_path, &[("safe", "false")], None)
            .await?;
        let answer = self.expect(&step, answer, &[StatusCode::OK], redactor)?;
        let existing: Vec<wire::ResourceReference> = self.parse(&step, &answer)?;
        let existing: BTreeMap<&str, &wire::ResourceReference> =
            existing.iter().map(|r| (r.name.as_str(), r)).collect();

        for plan in planned {
            let wanted = wanted_resource(request, plan, credentials);
            match existing.get(plan.name.as_str()) {
                None => {
                    let step = format!(
                        "creating Opal resource `{}` in project `{project}`",
                        plan.name
                    );
                    let answer = self
                        .send(&step, Method::POST, &list_path, &[], Some(&wanted))
                        .await?;
                    self.expect(
                        &step,
                        answer,
                        &[StatusCode::CREATED, StatusCode::OK],
                        redactor,
                    )?;
                    tracing::info!(project = %project, resource = %plan.name, "created Opal resource");
                }
                Some(current) => {
                    let step = format!(
                        "updating Opal resource `{}` in project `{project}`",
                        plan.name
                    );
                    match compare(current, &wanted) {
                        Comparison::Same => {}
                        Comparison::OtherTable(reads) => {
                            return Err(OpalError::Conflict {
                                step,
                                message: format!(
                                    "it reads {reads}, not {}.{}: two tables map to this resource name; \
                                     rename one of them",
                                    plan.table.schema, plan.table.table
                                ),
                            });
                        }
                        Comparison::Different => {
                            let path = format!(
                                "/project/{}/resource/{}",
                                encode_segment(project),
                                encode_segment(&plan.name)
                            );
                            let answer = self
                                .send(&step, Method::PUT, &path, &[], Some(&wanted))
                                .await?;
                            self.expect(
                                &step,
                                answer,
                                &[StatusCode::OK, StatusCode::NO_CONTENT],
                                redactor,
                            )?;
                            tracing::info!(project = %project, resource = %plan.name, "updated Opal resource");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn ensure_resources_view(
        &self,
        project: &str,
        group: &str,
        redactor: &Redactor,
    ) -> Result<(), OpalError> {
        let path = format!("/project/{}/permissions/resources", encode_segment(project));
        let step = format!("reading the resource permissions of Opal project `{project}`");
        let answer = self
            .send(&step, Method::GET, &path, &[("type", "GROUP")], None)
            .await?;
        let answer = self.expect(&step, answer, &[StatusCode::OK], redactor)?;
        let acls: Vec<wire::Acl> = self.parse(&step, &answer)?;
        if acls.iter().any(|a| a.is_group(group)) {
            return Ok(());
        }
        let step =
            format!("granting group `{group}` view of the resources of Opal project `{project}`");
        let query = [
            ("type", "GROUP"),
            ("permission", "RESOURCES_VIEW"),
            ("principal", group),
        ];
        let answer = self.send(&step, Method::POST, &path, &query, None).await?;
        self.expect(
            &step,
            answer,
            &[StatusCode::OK, StatusCode::NO_CONTENT],
            redactor,
        )?;
        tracing::info!(project, group, "granted view of the project's resources");
        Ok(())
    }
}

/// Checks the request and names each distinct table's resource.
fn plan(request: &OpalPublishRequest) -> Result<Vec<Planned<'_>>, OpalError> {
    let refuse = |message: String| OpalError::InvalidRequest { message };
    if !opal_project_name_allowed(&request.project) {
        return Err(refuse(format!(
            "Opal refuses the project name `{}`: only letters, digits, `_`, `-` and spaces are allowed",
            request.project
        )));
    }
    let group = request.group.trim();
    if group.is_empty() || group == "*" || request.group != group {
        return Err(refuse(format!(
            "`{}` cannot be an Opal group name",
            request.group
        )));
    }
    if request.database.host.is_empty() || request.database.database.is_empty() {
        return Err(refuse("the database host and name must be set".into()));
    }
    let mut seen: BTreeMap<String, &PgTable> = BTreeMap::new();
    let mut planned = Vec::new();
    for table in &request.tables {
        if table.schema.is_empty() || table.table.is_empty() {
            return Err(refuse(format!(
                "table `{}.{}` needs a schema and a name",
                table.schema, table.table
            )));
        }
        let name = resource_name(&table.schema, &table.table);
        match seen.get(&name) {
            Some(other) if *other == table => continue,
            Some(other) => {
                return Err(refuse(format!(
                    "tables `{}.{}` and `{}.{}` would both be Opal resource `{name}`",
                    other.schema, other.table, table.schema, table.table
                )));
            }
            None => {
                seen.insert(name.clone(), table);
                planned.push(Planned { table, name });
            }
        }
    }
    Ok(planned)
}

/// The resource reference a table should be: its parameters as resourcer's `sql` form has
/// them, `port` a number.
fn wanted_resource(request: &OpalPublishRequest, plan: &Planned<'_>, credentials: &str) -> Value {
    let parameters = json!({
        "host": request.database.host,
        "port": request.database.port,
        "db": request.database.database,
        "table": plan.table.table,
        "schema": plan.table.schema,
        "driver": "postgresql",
    });
    json!({
        "name": plan.name,
        "description": format!("Resource for table {} in schema {}", plan.table.table, plan.table.schema),
        "project": request.project,
        "provider": "resourcer",
        "factory": "sql",
        "parameters": parameters.to_string(),
        "credentials": credentials,
    })
}

enum Comparison {
    Same,
    Different,
    /// It reads this other `schema.table`.
    OtherTable(String),
}

/// Compares an existing reference with the wanted one; parameters and credentials are compared
/// as JSON values (key order does not matter, `"5432"` is not `5432`).
fn compare(current: &wire::ResourceReference, wanted: &Value) -> Comparison {
    let as_json = |s: &str| serde_json::from_str::<Value>(s).ok();
    let wanted_params = wanted["parameters"].as_str().and_then(as_json);
    let current_params = as_json(&current.parameters);
    if let (Some(have), Some(want)) = (&current_params, &wanted_params) {
        let place = |v: &Value| (v.get("schema").cloned(), v.get("table").cloned());
        if place(have) != place(want) {
            let text = |v: Option<&Value>| match v {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "?".to_owned(),
            };
            return Comparison::OtherTable(format!(
                "{}.{}",
                text(have.get("schema")),
                text(have.get("table"))
            ));
        }
    }
    let same = current_params.is_some()
        && current_params == wanted_params
        && current.credentials.as_deref().and_then(as_json)
            == wanted["credentials"].as_str().and_then(as_json)
        && current.provider == "resourcer"
        && current.factory == "sql"
        && current.description.as_deref() == wanted["description"].as_str();
    if same {
        Comparison::Same
    } else {
        Comparison::Different
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tables: &[(&str, &str)]) -> OpalPublishRequest {
        OpalPublishRequest::new(
            "Pr004",
            DatabaseLocation {
                host: "db".into(),
                port: 5432,
                database: "d".into(),
            },
            ReadOnlyRole {
                username: "r".into(),
                password: SecretString::from("pw"),
            },
            tables
                .iter()
                .map(|(s, t)| PgTable {
                    schema: (*s).into(),
                    table: (*t).into(),
                })
                .collect(),
        )
    }

    #[test]
    fn plans_distinct_tables_and_refuses_colliding_names() {
        let r = request(&[("s", "a"), ("s", "b"), ("s", "a")]);
        let names: Vec<String> = plan(&r).unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["tre_postgresql_s_a", "tre_postgresql_s_b"]);
        let r = request(&[("a_b", "c"), ("a", "b_c")]);
        let err = plan(&r).err().unwrap().to_string();
        assert!(
            err.contains("would both be Opal resource `tre_postgresql_a_b_c`"),
            "{err}"
        );
        let mut r = request(&[("s", "a")]);
        r.project = "Pr.004".into();
        assert!(matches!(plan(&r), Err(OpalError::InvalidRequest { .. })));
    }

    #[test]
    fn compares_parameters_as_json() {
        let r = request(&[("s", "t")]);
        let planned = plan(&r).unwrap();
        let creds = json!({"username": "r", "password": "pw"}).to_string();
        let wanted = wanted_resource(&r, &planned[0], &creds);
        let current = |parameters: Value, credentials: Option<&str>| wire::ResourceReference {
            name: "tre_postgresql_s_t".into(),
            description: Some("Resource for table t in schema s".into()),
            provider: "resourcer".into(),
            factory: "sql".into(),
            parameters: parameters.to_string(),
            credentials: credentials.map(str::to_owned),
        };
        let params = json!({"driver": "postgresql", "schema": "s", "table": "t", "db": "d", "port": 5432, "host": "db"});
        assert!(matches!(
            compare(&current(params.clone(), Some(&creds)), &wanted),
            Comparison::Same
        ));
        // The reference's string port, other credentials, or credentials not shown: update.
        let mut string_port = params.clone();
        string_port["port"] = json!("5432");
        assert!(matches!(
            compare(&current(string_port, Some(&creds)), &wanted),
            Comparison::Different
        ));
        assert!(matches!(
            compare(
                &current(params.clone(), Some(r#"{"username":"r","password":"old"}"#)),
                &wanted
            ),
            Comparison::Different
        ));
        assert!(matches!(
            compare(&current(params.clone(), None), &wanted),
            Comparison::Different
        ));
        let mut other_table = params;
        other_table["table"] = json!("u");
        assert!(matches!(
            compare(&current(other_table, Some(&creds)), &wanted),
            Comparison::OtherTable(t) if t == "s.u"
        ));
    }
}
