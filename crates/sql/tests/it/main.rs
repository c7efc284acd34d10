//! The PostgreSQL and MySQL sources against real servers (the SQL rig, `tools/sql-servers`).

mod load;
mod load_my;
mod mysql;
mod postgres;
