//! A sample database for tests that read a catalog: a small "world"
//! (`country`, `city`, `countrylanguage` in `public`, with the row counts
//! of the classic world database), a second schema `inventory` with an
//! expression index, a hash index, a fillfactor and a materialized view, a
//! schema and a table whose names need quoting (`odd "schema".x`,
//! `my table`, index `my index`), and an empty schema `empty_schema`.
//!
//! Autovacuum is off on every sample table, so the statistics and the
//! sizes stay what the function leaves them: rows inserted, statistics
//! flushed, then ANALYZE.

use crate::PgCluster;
use postgres::Client;

/// The rows of each sample table.
pub const COUNTRIES: i64 = 239;
pub const CITIES: i64 = 4079;
pub const LANGUAGES: i64 = 984;
pub const ITEMS: i64 = 3000;
/// Items with `price > 20`: the rows of the materialized view.
pub const EXPENSIVE_ITEMS: i64 = 1000;
pub const MY_TABLE_ROWS: i64 = 500;

/// The schema and table whose names need quoting.
pub const ODD_SCHEMA: &str = "odd \"schema\".x";
pub const ODD_TABLE: &str = "my table";
pub const ODD_INDEX: &str = "my index";

const SETUP: &str = r#"
CREATE TABLE country (
    code char(3) PRIMARY KEY,
    name text NOT NULL,
    continent text NOT NULL,
    population integer NOT NULL
) WITH (autovacuum_enabled = false);
CREATE TABLE city (
    id integer PRIMARY KEY,
    name text NOT NULL,
    countrycode char(3) NOT NULL REFERENCES country,
    district text,
    population integer NOT NULL
) WITH (autovacuum_enabled = false);
CREATE INDEX city_countrycode ON city (countrycode);
CREATE TABLE countrylanguage (
    countrycode char(3) NOT NULL REFERENCES country,
    language text NOT NULL,
    isofficial boolean NOT NULL,
    percentage real NOT NULL,
    PRIMARY KEY (countrycode, language)
) WITH (autovacuum_enabled = false);
INSERT INTO country
SELECT chr(65 + i / 676) || chr(65 + i / 26 % 26) || chr(65 + i % 26),
       'Country ' || i,
       (ARRAY['Asia', 'Europe', 'Africa', 'Oceania', 'North America', 'South America'])[1 + i % 6],
       1000 * i
  FROM generate_series(0, 238) AS i;
INSERT INTO city
SELECT i,
       'City number ' || i,
       chr(65 + (i % 239) / 676) || chr(65 + (i % 239) / 26 % 26) || chr(65 + (i % 239) % 26),
       CASE WHEN i % 5 <> 0 THEN 'District ' || (i % 97) END,
       10 * i
  FROM generate_series(1, 4079) AS i;
INSERT INTO countrylanguage
SELECT chr(65 + (i % 239) / 676) || chr(65 + (i % 239) / 26 % 26) || chr(65 + (i % 239) % 26),
       'Language ' || i,
       i % 3 = 0,
       (i % 100)::real
  FROM generate_series(1, 984) AS i;

CREATE SCHEMA inventory;
CREATE TABLE inventory.item (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    label text NOT NULL,
    price numeric(10, 2) NOT NULL,
    notes text
) WITH (fillfactor = 80, autovacuum_enabled = false);
CREATE INDEX item_lower_label ON inventory.item (lower(label));
CREATE INDEX item_label_hash ON inventory.item USING hash (label);
INSERT INTO inventory.item (label, price, notes)
SELECT 'Item ' || i, i / 100.0, repeat('note ', i % 40)
  FROM generate_series(1, 3000) AS i;
CREATE MATERIALIZED VIEW inventory.expensive WITH (autovacuum_enabled = false) AS
SELECT id, label FROM inventory.item WHERE price > 20;

CREATE SCHEMA "odd ""schema"".x";
CREATE TABLE "odd ""schema"".x"."my table" (
    id integer PRIMARY KEY,
    "my column" text
) WITH (autovacuum_enabled = false);
CREATE INDEX "my index" ON "odd ""schema"".x"."my table" ("my column");
INSERT INTO "odd ""schema"".x"."my table"
SELECT i, 'value ' || i FROM generate_series(1, 500) AS i;

CREATE SCHEMA empty_schema;
"#;

/// Creates database `dbname` (any name: it is quoted) holding the sample
/// schemas, tables, indexes and rows, analyzed. Panics on failure.
pub fn create_sample_database(cluster: &PgCluster, dbname: &str) {
    let mut admin = cluster.connect("postgres");
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(dbname)))
        .unwrap_or_else(|e| panic!("cannot create database {dbname:?}: {e}"));
    drop(admin);
    let mut client = cluster.connect(dbname);
    client
        .batch_execute(SETUP)
        .unwrap_or_else(|e| panic!("cannot fill the sample database {dbname:?}: {e}"));
    analyze(&mut client, "ANALYZE");
}

/// Runs `statement` (an ANALYZE or VACUUM) once the session's pending
/// activity counters have reached the shared statistics, then flushes
/// again: otherwise counters still pending from earlier statements land
/// after the ANALYZE and skew `n_live_tup` and `n_dead_tup`.
pub fn analyze(client: &mut Client, statement: &str) {
    flush_statistics(client);
    client
        .batch_execute(statement)
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    flush_statistics(client);
}

/// Makes this session's pending activity counters visible to every other
/// session now (PostgreSQL 15+; older servers report them on their own,
/// without a way to force it). The flush happens when the session goes
/// idle after the forcing statement, before its answer is sent.
pub fn flush_statistics(client: &mut Client) {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .map(|row| row.get(0))
        .unwrap_or_else(|e| panic!("server_version_num: {e}"));
    if version >= 150000 {
        client
            .batch_execute("SELECT pg_stat_force_next_flush()")
            .unwrap_or_else(|e| panic!("pg_stat_force_next_flush: {e}"));
    }
}

/// `name` as an SQL identifier, always quoted.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
