//! The PostgreSQL source against a real PostgreSQL server (the SQL rig, `tools/sql-servers`).

mod load;
mod postgres;
