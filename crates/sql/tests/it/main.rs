//! The PostgreSQL and MySQL sources, and the PostgreSQL destination, against real servers (the
//! SQL rig, `tools/sql-servers`). The sources' cases are one suite (`sources`) run against
//! both servers; each server's module holds its side of the suite and the cases only it has.

mod destination;
mod mysql;
mod postgres;
mod sources;
