//! The SQL-server test rig, as tests use it: `tools/sql-servers up DIR` runs a private
//! PostgreSQL and MariaDB on free loopback ports with TLS (a throwaway CA), and `.ci/run` names
//! DIR in `PUBLISH_TEST_SQL_RIG`. Without it a test using [`SqlRig::get`] is skipped with a
//! message, except in CI (`CI` set), where it fails.
//!
//! Only for tests (feature `test-util`). Each test works in a schema of its own
//! ([`SqlRig::pg_schema`], [`SqlRig::my_schema`], or [`SqlRig::scratch`] on either server),
//! dropped at its end, so tests run in parallel; a test written once over [`Engine`] and
//! [`TestSource`] runs against both servers. The
//! PostgreSQL destination's tests each get a database and a writer and a reader role of their
//! own ([`SqlRig::pg_destination`]), made through the rig's superuser ([`SqlRig::pg_admin`]).

#![allow(
    clippy::missing_panics_doc,
    reason = "test helpers panic on a broken rig"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use publish_source::{Source, SourceError};
use publish_types::{HostAllowList, HostUrl, ObjectName, Scheme};
use secrecy::SecretString;
use tokio_postgres::{Client, NoTls};

use crate::dialect::Dialect;
use crate::source::SqlSource;
use crate::{PostgresDestinationConfig, SqlConfig, SqlOptions, SqlTls};

/// The running rig: what its `env` file says.
#[derive(Debug, Clone)]
pub struct SqlRig {
    env: BTreeMap<String, String>,
}

/// One server of the rig, for tests run against each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The PostgreSQL server (`PG_*` in the rig's `env`).
    Postgresql,
    /// The MariaDB server (`MYSQL_*`), read by the MySQL source.
    Mariadb,
}

impl Engine {
    /// The scheme of its address (`postgresql`, `mysql`), as the allow-list and errors write it.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Postgresql => "postgresql",
            Self::Mariadb => "mysql",
        }
    }

    fn host_scheme(self) -> Scheme {
        match self {
            Self::Postgresql => Scheme::Postgresql,
            Self::Mariadb => Scheme::Mysql,
        }
    }

    /// `name` quoted as an identifier of this server (`"` or `` ` ``, doubled inside).
    pub fn quote(self, name: &str) -> String {
        match self {
            Self::Postgresql => publish_types::quote(name, '"'),
            Self::Mariadb => publish_types::quote(name, '`'),
        }
    }

    /// Its variable `name` of the rig's `env` (`PG_PORT`, `MYSQL_PORT`).
    fn var(self, name: &str) -> String {
        match self {
            Self::Postgresql => format!("PG_{name}"),
            Self::Mariadb => format!("MYSQL_{name}"),
        }
    }
}

/// What a test does with either source, whatever its database: connect and name the snapshot.
/// Both sources are one implementation, so a test generic over this runs against each server.
pub trait TestSource: Source + Sized + 'static {
    /// Connects and opens the package's snapshot: `PostgresSource::connect`,
    /// `MysqlSource::connect`.
    fn connect(config: SqlConfig) -> impl Future<Output = Result<Self, SourceError>> + Send;

    /// The identity of the package's snapshot, as recorded for every table.
    fn snapshot(&self) -> &str;
}

impl<D: Dialect> TestSource for SqlSource<D> {
    async fn connect(config: SqlConfig) -> Result<Self, SourceError> {
        SqlSource::connect(config).await
    }

    fn snapshot(&self) -> &str {
        SqlSource::snapshot(self)
    }
}

impl SqlRig {
    /// The rig named by `PUBLISH_TEST_SQL_RIG`; `None` (with a message) outside CI.
    pub fn get() -> Option<Self> {
        let (_, env) =
            publish_test_support::rig_env("PUBLISH_TEST_SQL_RIG", "tools/sql-servers up DIR")?;
        Some(Self { env })
    }

    /// A value of the rig's `env` file, e.g. `PG_PORT`.
    pub fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("the SQL rig's env has no {name}"))
    }

    /// The CA both servers' certificates are signed with.
    pub fn ca_file(&self) -> PathBuf {
        PathBuf::from(self.var("SQL_RIG_CA"))
    }

    /// `engine`'s address.
    pub fn host(&self, engine: Engine) -> HostUrl {
        let port = self.var(&engine.var("PORT")).parse().ok();
        HostUrl::parse_database(self.var(&engine.var("HOST")), engine.host_scheme(), port)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// An allow-list holding just `engine`.
    pub fn allow_list(&self, engine: Engine) -> HostAllowList {
        let host = self.var(&engine.var("HOST"));
        HostAllowList::parse(&format!("{}://{host}:*", engine.scheme()))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `engine`'s database the test user reads: a package's catalog.
    pub fn database(&self, engine: Engine) -> ObjectName {
        ObjectName::parse(self.var(&engine.var("DATABASE"))).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The name of `engine`'s test user.
    pub fn user(&self, engine: Engine) -> &str {
        self.var(&engine.var("USER"))
    }

    /// A source configuration of `engine`'s test user with `options`, its host admitted by
    /// [`SqlRig::allow_list`].
    pub fn config(&self, engine: Engine, options: SqlOptions) -> SqlConfig {
        let host = self
            .allow_list(engine)
            .admit(&self.host(engine))
            .unwrap_or_else(|e| panic!("{e}"));
        SqlConfig {
            host,
            database: self.database(engine),
            user: SecretString::from(self.user(engine).to_owned()),
            password: SecretString::from(self.var(&engine.var("PASSWORD")).to_owned()),
            application_name: "publish-sql tests".to_owned(),
            options,
        }
    }

    /// A fresh schema of this test's on `engine` ([`SqlRig::pg_schema`],
    /// [`SqlRig::my_schema`]).
    pub async fn scratch(&self, engine: Engine, prefix: &str) -> Scratch {
        match engine {
            Engine::Postgresql => Scratch::Postgresql(self.pg_schema(prefix).await),
            Engine::Mariadb => Scratch::Mariadb(self.my_schema(prefix).await),
        }
    }

    /// Runs `sql` (statements separated by `;`) on a connection of its own that may write:
    /// PostgreSQL's test user, MariaDB's administrator (its test user may only read).
    pub async fn execute(&self, engine: Engine, sql: &str) {
        match engine {
            Engine::Postgresql => self
                .pg_client()
                .await
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Engine::Mariadb => {
                use mysql_async::prelude::Queryable;
                let mut admin = self.my_admin().await;
                admin
                    .query_drop(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let _ = admin.disconnect().await;
            }
        }
    }

    /// Options trusting the rig's CA (TLS verify-full, as by default), for either server.
    pub fn tls_options(&self) -> SqlOptions {
        SqlOptions {
            tls: SqlTls::VerifyFull,
            ca_file: Some(self.ca_file()),
            ..SqlOptions::default()
        }
    }

    /// A plain connection as the test user, for loading and changing data.
    pub async fn pg_client(&self) -> Client {
        self.pg_connect(self.var("PG_USER"), self.var("PG_PASSWORD"), None)
            .await
    }

    /// A plain connection (no TLS) to the rig's PostgreSQL as `user`, to `database` (else the
    /// rig's); panics naming the user if it fails.
    async fn pg_connect(&self, user: &str, password: &str, database: Option<&str>) -> Client {
        let mut config = tokio_postgres::Config::new();
        config
            .host(self.var("PG_HOST"))
            .port(self.var("PG_PORT").parse().unwrap_or(5432))
            .user(user)
            .password(password)
            .dbname(database.unwrap_or(self.var("PG_DATABASE")));
        let (client, connection) = config
            .connect(NoTls)
            .await
            .unwrap_or_else(|e| panic!("connecting to the rig's PostgreSQL as {user}: {e}"));
        tokio::spawn(connection);
        client
    }

    /// A fresh schema of this test's, `prefix` plus a number unique in the process; dropped
    /// (with everything in it) when the handle is.
    pub async fn pg_schema(&self, prefix: &str) -> PgSchema {
        let name = unique(prefix);
        self.pg_client()
            .await
            .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("CREATE SCHEMA {name}: {e}"));
        PgSchema {
            rig: self.clone(),
            names: vec![name],
        }
    }
}

/// `prefix` plus the process and a number unique in it: a name no other test on the shared rig
/// uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl SqlRig {
    /// A plain connection as the PostgreSQL superuser (`PG_ADMIN_USER`, else `postgres`, which
    /// `tools/sql-servers` creates with the rig's password) to `database` (else the rig's).
    pub async fn pg_admin(&self, database: Option<&str>) -> Client {
        let user = self
            .env
            .get("PG_ADMIN_USER")
            .map_or("postgres", String::as_str);
        self.pg_connect(user, self.var("PG_PASSWORD"), database)
            .await
    }

    /// A fresh database for the PostgreSQL destination, `prefix` plus a number unique in the
    /// process, with a writer role (LOGIN, `CREATE` on the database, nothing else) and a
    /// read-only role (LOGIN, nothing granted) of its own; all dropped when the handle is.
    pub async fn pg_destination(&self, prefix: &str) -> PgDestinationRig {
        let name = unique(prefix).to_lowercase();
        let password = |role: &str| {
            format!(
                "{role}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            )
        };
        let rig = PgDestinationRig {
            rig: self.clone(),
            writer: format!("{name}_writer"),
            writer_password: password("w"),
            reader: format!("{name}_reader"),
            reader_password: password("r"),
            database: name,
        };
        let admin = self.pg_admin(None).await;
        for sql in [
            format!(
                "CREATE ROLE \"{}\" LOGIN PASSWORD '{}'",
                rig.writer, rig.writer_password
            ),
            format!(
                "CREATE ROLE \"{}\" LOGIN PASSWORD '{}'",
                rig.reader, rig.reader_password
            ),
            format!("CREATE DATABASE \"{}\"", rig.database),
            format!(
                "GRANT CREATE ON DATABASE \"{}\" TO \"{}\"",
                rig.database, rig.writer
            ),
        ] {
            admin
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        rig
    }
}

/// A database and two roles of one destination test (see [`SqlRig::pg_destination`]).
pub struct PgDestinationRig {
    rig: SqlRig,
    /// The database.
    pub database: String,
    /// The writer role.
    pub writer: String,
    /// Its password.
    pub writer_password: String,
    /// The read-only role.
    pub reader: String,
    /// Its password.
    pub reader_password: String,
}

impl PgDestinationRig {
    /// The rig.
    pub fn rig(&self) -> &SqlRig {
        &self.rig
    }

    /// The destination's configuration: this database, the writer, the reader, `options`.
    pub fn config(&self, options: SqlOptions) -> PostgresDestinationConfig {
        PostgresDestinationConfig {
            host: self.rig.var("PG_HOST").to_owned(),
            port: self
                .rig
                .var("PG_PORT")
                .parse()
                .unwrap_or(PostgresDestinationConfig::DEFAULT_PORT),
            database: self.database.clone(),
            writer_user: self.writer.clone(),
            writer_password: SecretString::from(self.writer_password.clone()),
            reader_role: self.reader.clone(),
            options,
        }
    }

    /// A plain connection to this database as the superuser.
    pub async fn admin(&self) -> Client {
        self.rig.pg_admin(Some(&self.database)).await
    }

    /// A plain connection to this database as `user`.
    pub async fn connect_as(&self, user: &str, password: &str) -> Client {
        self.rig
            .pg_connect(user, password, Some(&self.database))
            .await
    }

    fn drop_sql(&self) -> [String; 3] {
        [
            format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database),
            format!("DROP ROLE IF EXISTS \"{}\"", self.writer),
            format!("DROP ROLE IF EXISTS \"{}\"", self.reader),
        ]
    }

    /// Drops the database and the roles (closing every connection to it).
    pub async fn remove(mut self) {
        let admin = self.rig.pg_admin(None).await;
        for sql in self.drop_sql() {
            admin
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        self.database.clear();
    }
}

impl Drop for PgDestinationRig {
    /// A test that failed: drop them from a thread of its own, as [`PgSchema`] does.
    fn drop(&mut self) {
        if self.database.is_empty() {
            return;
        }
        let sql = self.drop_sql();
        in_background(self.rig.clone(), |rig| async move {
            let admin = rig.pg_admin(None).await;
            for sql in sql {
                let _ = admin.batch_execute(&sql).await;
            }
        });
    }
}

impl SqlRig {
    /// A plain connection as the rig's MariaDB administrator (to create the tests'
    /// databases and grant the test user on them).
    pub async fn my_admin(&self) -> mysql_async::Conn {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.var("MYSQL_HOST"))
            .tcp_port(self.var("MYSQL_PORT").parse().unwrap_or(3306))
            .user(Some(self.var("MYSQL_ADMIN_USER")))
            .pass(Some(self.var("MYSQL_PASSWORD")))
            .prefer_socket(false);
        mysql_async::Conn::new(opts)
            .await
            .unwrap_or_else(|e| panic!("connecting to the rig's MariaDB: {e}"))
    }

    /// A fresh MariaDB database (the MySQL word for a schema) the test user may read,
    /// `prefix` plus a number unique in the process; dropped by [`MyDatabase::remove`].
    pub async fn my_schema(&self, prefix: &str) -> MyDatabase {
        let name = unique(prefix);
        let mut database = MyDatabase {
            rig: self.clone(),
            names: Vec::new(),
        };
        database.create(&name).await;
        database
    }
}

/// MariaDB databases a test created; dropped with their tables by [`MyDatabase::remove`].
pub struct MyDatabase {
    rig: SqlRig,
    names: Vec<String>,
}

impl MyDatabase {
    /// The first database's name.
    pub fn name(&self) -> &str {
        &self.names[0]
    }

    /// Creates another database (any name), readable by the test user, dropped with these.
    pub async fn create(&mut self, name: &str) {
        use mysql_async::prelude::Queryable;
        let quoted = Engine::Mariadb.quote(name);
        let user = self.rig.var("MYSQL_USER").to_owned();
        let mut admin = self.rig.my_admin().await;
        admin
            .query_drop(format!(
                "CREATE DATABASE {quoted} CHARACTER SET utf8mb4; \
                 GRANT SELECT ON {quoted}.* TO '{user}'@'%'; \
                 GRANT SELECT ON {quoted}.* TO '{user}'@'localhost'"
            ))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.disconnect().await;
        self.names.push(name.to_owned());
    }

    /// Drops the databases. Call it at the end of the test, after the sources using them are
    /// dropped.
    pub async fn remove(mut self) {
        use mysql_async::prelude::Queryable;
        let sql: String = std::mem::take(&mut self.names)
            .iter()
            .map(|n| format!("DROP DATABASE IF EXISTS {};", Engine::Mariadb.quote(n)))
            .collect();
        let mut admin = self.rig.my_admin().await;
        admin
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("dropping the test databases: {e}"));
        let _ = admin.disconnect().await;
    }
}

/// Schemas a test created; dropped with their tables when this is.
pub struct PgSchema {
    rig: SqlRig,
    names: Vec<String>,
}

impl PgSchema {
    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.names[0]
    }

    /// Drops `name` too when this is removed (another schema the test created).
    pub fn also_drop(&mut self, name: &str) {
        self.names.push(name.to_owned());
    }

    /// Creates another schema (any name), dropped with this one, as [`MyDatabase::create`]
    /// does for MariaDB.
    pub async fn create(&mut self, name: &str) {
        let quoted = Engine::Postgresql.quote(name);
        self.rig
            .pg_client()
            .await
            .batch_execute(&format!("CREATE SCHEMA {quoted}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE SCHEMA {name}: {e}"));
        self.also_drop(name);
    }

    fn drop_sql(&mut self) -> String {
        std::mem::take(&mut self.names)
            .iter()
            .map(|n| {
                format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE;",
                    Engine::Postgresql.quote(n)
                )
            })
            .collect()
    }

    /// Drops the schemas and everything in them. Call it at the end of the test, after the
    /// sources using them are dropped: it waits for their connections to close (their
    /// transactions hold locks on the tables).
    pub async fn remove(mut self) {
        let sql = self.drop_sql();
        self.rig
            .pg_client()
            .await
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("dropping the test schemas: {e}"));
    }
}

impl Drop for PgSchema {
    /// A test that failed (or forgot [`PgSchema::remove`]): drop the schemas from a thread
    /// of its own, not waiting for it — the test's runtime, blocked here, may hold the
    /// connections whose locks the drop waits for. The rig is thrown away after CI anyway.
    fn drop(&mut self) {
        if self.names.is_empty() {
            return;
        }
        let sql = format!("SET lock_timeout = '30s'; {}", self.drop_sql());
        in_background(self.rig.clone(), |rig| async move {
            let _ = rig.pg_client().await.batch_execute(&sql).await;
        });
    }
}

/// Runs `cleanup` on a thread and a runtime of its own, not waiting for it: what a handle
/// dropped by a failed test does, since the test's runtime, blocked in the drop, may hold the
/// connections the cleanup waits for.
fn in_background<F, C>(rig: SqlRig, cleanup: C)
where
    C: FnOnce(SqlRig) -> F + Send + 'static,
    F: Future<Output = ()>,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        runtime.block_on(cleanup(rig));
    });
}

/// A schema of a test's own on either server ([`SqlRig::scratch`]).
pub enum Scratch {
    /// A PostgreSQL schema.
    Postgresql(PgSchema),
    /// A MariaDB database.
    Mariadb(MyDatabase),
}

impl Scratch {
    /// The first schema's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Postgresql(schema) => schema.name(),
            Self::Mariadb(database) => database.name(),
        }
    }

    /// Creates another schema (any name), dropped with the first.
    pub async fn create(&mut self, name: &str) {
        match self {
            Self::Postgresql(schema) => schema.create(name).await,
            Self::Mariadb(database) => database.create(name).await,
        }
    }

    /// Drops the schemas and everything in them. Call it at the end of the test, after the
    /// sources using them are dropped.
    pub async fn remove(self) {
        match self {
            Self::Postgresql(schema) => schema.remove().await,
            Self::Mariadb(database) => database.remove().await,
        }
    }
}
