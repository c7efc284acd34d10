//! The PostgreSQL and MySQL sources, and the PostgreSQL destination, against real servers (the
//! SQL rig, `tools/sql-servers`).

mod destination;
mod load;
mod load_my;
mod mysql;
mod postgres;
