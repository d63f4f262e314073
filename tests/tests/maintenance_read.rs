//! The read side of the maintenance API over real HTTP: `GET /maintenance`,
//! `/maintenance/<db>`, `/maintenance/<db>/schema/<schema>` and
//! `/maintenance/<db>/schema/<schema>/table/<table>` against the sample
//! database, field by field against what PostgreSQL itself says; bloat
//! estimates that follow UPDATEs, DELETEs and VACUUM FULL; 404s naming what
//! is missing; names that need quoting.

use dbagent_tests::sample::{self, ODD_INDEX, ODD_SCHEMA, ODD_TABLE};
use dbagent_tests::{Agent, AgentOptions, PgCluster, error_text};
use postgres::Client;
use postgres::types::ToSql;
use serde_json::{Value, json};

/// A cluster without autovacuum holding the sample database `world` and a
/// database `closed` that accepts no connections, the agent serving it, and
/// a connection to `world` (opened after the sample's ANALYZE, so the
/// database's files no longer change).
fn start() -> (PgCluster, Agent, Client) {
    let cluster = PgCluster::start_with(&["autovacuum = off"]);
    sample::create_sample_database(&cluster, "world");
    let mut admin = cluster.connect("postgres");
    admin.batch_execute("CREATE DATABASE closed").unwrap();
    admin
        .batch_execute("ALTER DATABASE closed ALLOW_CONNECTIONS false")
        .unwrap();
    drop(admin);
    let client = cluster.connect("world");
    let agent = Agent::start(&cluster, AgentOptions::new());
    (cluster, agent, client)
}

/// Every byte but the unreserved ones percent-encoded, as a path segment.
fn enc(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The first row of `sql` as JSON (`to_jsonb` of the row).
fn sql_json(client: &mut Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Value {
    let text: String = client
        .query_one(
            &format!("SELECT to_jsonb(q)::text FROM ({sql}) AS q"),
            params,
        )
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0);
    serde_json::from_str(&text).unwrap()
}

fn sql_i64(client: &mut Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> i64 {
    client
        .query_one(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// PostgreSQL's own `pg_size_pretty` of `bytes`.
fn pretty(client: &mut Client, bytes: i64) -> String {
    client
        .query_one("SELECT pg_size_pretty($1::int8)", &[&bytes])
        .unwrap()
        .get(0)
}

/// Every `X_bytes` of `object` is an integer (or, for a bloat estimate,
/// null) and its `X_size` is PostgreSQL's `pg_size_pretty` of it.
fn assert_sizes_agree(client: &mut Client, object: &Value) {
    let map = object.as_object().expect("an object");
    for (key, value) in map {
        let Some(stem) = key.strip_suffix("_bytes") else {
            continue;
        };
        let size = map
            .get(&format!("{stem}_size"))
            .unwrap_or_else(|| panic!("{key} without {stem}_size in {object}"));
        match value.as_i64() {
            Some(bytes) => {
                assert!(bytes >= 0, "{key} in {object}");
                assert_eq!(size, &json!(pretty(client, bytes)), "{key} in {object}");
            }
            None => {
                assert!(
                    key.contains("bloat") && value.is_null() && size.is_null(),
                    "{key} is neither an integer nor an unknown estimate in {object}"
                );
            }
        }
    }
}

fn keys(object: &Value) -> Vec<&str> {
    object
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn names<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item[key].as_str().expect("a name"))
        .collect()
}

fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|item| item[key] == name)
        .unwrap_or_else(|| panic!("no {key} {name:?} in {list}"))
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{value} is not an integer"))
}

const DATABASE_KEYS: &[&str] = &[
    "datname",
    "indexes_bloat_bytes",
    "indexes_bloat_size",
    "indexes_bytes",
    "indexes_size",
    "n_indexes",
    "n_tables",
    "tables_bloat_bytes",
    "tables_bloat_size",
    "tables_bytes",
    "tables_size",
    "toast_bytes",
    "toast_size",
    "total_bytes",
    "total_size",
];

const SCHEMA_KEYS: &[&str] = &[
    "indexes_bloat_bytes",
    "indexes_bloat_size",
    "indexes_bytes",
    "indexes_size",
    "n_indexes",
    "n_tables",
    "name",
    "tables_bloat_bytes",
    "tables_bloat_size",
    "tables_bytes",
    "tables_size",
    "toast_bytes",
    "toast_size",
    "total_bytes",
    "total_size",
];

const TABLE_KEYS: &[&str] = &[
    "bloat_bytes",
    "bloat_size",
    "index_bloat_bytes",
    "index_bloat_size",
    "index_bytes",
    "index_size",
    "n_indexes",
    "name",
    "row_estimate",
    "table_bytes",
    "table_size",
    "toast_bytes",
    "toast_size",
    "total_bytes",
    "total_size",
];

const INDEX_KEYS: &[&str] = &[
    "bloat_bytes",
    "bloat_size",
    "def",
    "idx_tup_fetch",
    "idx_tup_read",
    "indexrelname",
    "indisunique",
    "name",
    "number_of_columns",
    "scans",
    "tablename",
    "tablespace",
    "total_bytes",
    "total_size",
    "type",
];

/// The counters of `pg_stat_all_tables` the table route repeats.
const STAT_FIELDS: &[&str] = &[
    "seq_scan",
    "seq_tup_read",
    "idx_scan",
    "idx_tup_fetch",
    "n_tup_ins",
    "n_tup_upd",
    "n_tup_del",
    "n_tup_hot_upd",
    "n_live_tup",
    "n_dead_tup",
    "n_mod_since_analyze",
    "last_vacuum",
    "last_autovacuum",
    "last_analyze",
    "last_autoanalyze",
    "vacuum_count",
    "autovacuum_count",
    "analyze_count",
    "autoanalyze_count",
];

const TABLE_DETAIL_KEYS: &[&str] = &[
    "analyze_count",
    "autoanalyze_count",
    "autovacuum_count",
    "bloat_bytes",
    "bloat_size",
    "fillfactor",
    "idx_scan",
    "idx_tup_fetch",
    "index_bloat_bytes",
    "index_bloat_size",
    "index_bytes",
    "index_size",
    "indexes",
    "last_analyze",
    "last_autoanalyze",
    "last_autovacuum",
    "last_vacuum",
    "n_dead_tup",
    "n_live_tup",
    "n_mod_since_analyze",
    "n_tup_del",
    "n_tup_hot_upd",
    "n_tup_ins",
    "n_tup_upd",
    "name",
    "relid",
    "relname",
    "row_estimate",
    "schemaname",
    "seq_scan",
    "seq_tup_read",
    "table_bytes",
    "table_size",
    "toast_bytes",
    "toast_size",
    "total_bytes",
    "total_size",
    "vacuum_count",
];

/// What the catalog says of a table's sizes (the route's definitions:
/// `table_bytes` is the rest of the total once indexes and TOAST are
/// taken out).
fn table_sizes(client: &mut Client, schema: &str, table: &str) -> Value {
    sql_json(
        client,
        "SELECT s.*, s.total_bytes - s.index_bytes - s.toast_bytes AS table_bytes
           FROM (SELECT pg_total_relation_size(c.oid) AS total_bytes,
                        pg_indexes_size(c.oid) AS index_bytes,
                        coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast_bytes
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2) AS s",
        &[&schema, &table],
    )
}

/// The sums over a schema's tables (`$1`), or over every schema but
/// pg_toast and temporary ones (`$1` null), as the routes define them.
fn schema_sums(client: &mut Client, schema: Option<&str>) -> Value {
    sql_json(
        client,
        "SELECT count(*) AS n_tables,
                coalesce(sum((SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid)), 0)::int8 AS n_indexes,
                coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 AS total_bytes,
                coalesce(sum(pg_indexes_size(c.oid)), 0)::int8 AS indexes_bytes,
                coalesce(sum(pg_total_relation_size(nullif(c.reltoastrelid, 0))), 0)::int8 AS toast_bytes
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'm')
            AND CASE WHEN $1::text IS NULL THEN n.nspname !~ '^pg_(toast|temp_)'
                     ELSE n.nspname = $1 END",
        &[&schema],
    )
}

fn assert_sums(entry: &Value, expected: &Value) {
    for key in ["n_tables", "n_indexes", "indexes_bytes", "toast_bytes"] {
        assert_eq!(entry[key], expected[key], "{key}: {entry} vs {expected}");
    }
    let (total, indexes, toast) = (
        int(&expected["total_bytes"]),
        int(&expected["indexes_bytes"]),
        int(&expected["toast_bytes"]),
    );
    assert_eq!(
        int(&entry["tables_bytes"]),
        total - indexes - toast,
        "{entry}"
    );
}

#[test]
fn instance_lists_connectable_databases_with_their_sums() {
    let (_cluster, agent, mut client) = start();
    let body = agent.get_ok("/maintenance");
    assert_eq!(keys(&body), ["databases", "instance"]);

    let databases = &body["databases"];
    assert_eq!(
        names(databases, "datname"),
        ["postgres", "world"],
        "templates and databases closed to connections are left out"
    );
    for entry in databases.as_array().unwrap() {
        assert_eq!(keys(entry), DATABASE_KEYS);
        assert_sizes_agree(&mut client, entry);
    }

    let world = find(databases, "datname", "world");
    let world_size = sql_i64(&mut client, "SELECT pg_database_size('world')", &[]);
    assert_eq!(int(&world["total_bytes"]), world_size);
    let expected = schema_sums(&mut client, None);
    assert_sums(world, &expected);
    // Every sample table but the hash index's is estimated, and the
    // freshly built sample has some slack: the sums are numbers.
    assert!(int(&world["tables_bloat_bytes"]) >= 0);
    assert!(int(&world["indexes_bloat_bytes"]) > 0, "{world}");

    // The database's sums are its schemas' sums.
    let schemas = agent.get_ok("/maintenance/world")["schemas"].clone();
    for key in [
        "n_tables",
        "n_indexes",
        "tables_bytes",
        "indexes_bytes",
        "toast_bytes",
        "tables_bloat_bytes",
        "indexes_bloat_bytes",
    ] {
        let sum: i64 = schemas
            .as_array()
            .unwrap()
            .iter()
            .map(|s| int(&s[key]))
            .sum();
        assert_eq!(int(&world[key]), sum, "{key}");
    }

    // The instance: every database but templates, including the closed one.
    let instance = &body["instance"];
    assert_eq!(keys(instance), ["total_bytes", "total_size"]);
    let closed = sql_i64(&mut client, "SELECT pg_database_size('closed')", &[]);
    let listed: i64 = databases
        .as_array()
        .unwrap()
        .iter()
        .map(|d| int(&d["total_bytes"]))
        .sum();
    assert_eq!(int(&instance["total_bytes"]), listed + closed);
    assert_sizes_agree(&mut client, instance);
}

#[test]
fn database_lists_schemas_with_their_sums() {
    let (_cluster, agent, mut client) = start();
    let body = agent.get_ok("/maintenance/world");
    assert_eq!(keys(&body), ["schemas", "total_bytes", "total_size"]);
    let size = sql_i64(&mut client, "SELECT pg_database_size('world')", &[]);
    assert_eq!(int(&body["total_bytes"]), size);
    assert_eq!(body["total_size"], json!(pretty(&mut client, size)));

    let schemas = &body["schemas"];
    assert_eq!(
        names(schemas, "name"),
        [
            "empty_schema",
            "information_schema",
            "inventory",
            ODD_SCHEMA,
            "pg_catalog",
            "public"
        ]
    );
    for entry in schemas.as_array().unwrap() {
        assert_eq!(keys(entry), SCHEMA_KEYS);
        assert_sizes_agree(&mut client, entry);
        let name = entry["name"].as_str().unwrap();
        let expected = schema_sums(&mut client, Some(name));
        assert_sums(entry, &expected);
        assert_eq!(entry["total_bytes"], expected["total_bytes"], "{name}");
    }

    let public = find(schemas, "name", "public");
    assert_eq!(
        (int(&public["n_tables"]), int(&public["n_indexes"])),
        (3, 4)
    );
    let inventory = find(schemas, "name", "inventory");
    assert_eq!(
        (int(&inventory["n_tables"]), int(&inventory["n_indexes"])),
        (2, 3)
    );
    let odd = find(schemas, "name", ODD_SCHEMA);
    assert_eq!((int(&odd["n_tables"]), int(&odd["n_indexes"])), (1, 2));
    assert_eq!(
        find(schemas, "name", "empty_schema"),
        &json!({
            "indexes_bloat_bytes": 0, "indexes_bloat_size": "0 bytes",
            "indexes_bytes": 0, "indexes_size": "0 bytes",
            "n_indexes": 0, "n_tables": 0, "name": "empty_schema",
            "tables_bloat_bytes": 0, "tables_bloat_size": "0 bytes",
            "tables_bytes": 0, "tables_size": "0 bytes",
            "toast_bytes": 0, "toast_size": "0 bytes",
            "total_bytes": 0, "total_size": "0 bytes",
        })
    );

    // A schema's bloat is the sum of its tables' and their indexes'.
    let tables = agent.get_ok("/maintenance/world/schema/public")["tables"].clone();
    let sum = |key: &str| -> i64 {
        tables
            .as_array()
            .unwrap()
            .iter()
            .map(|t| int(&t[key]))
            .sum()
    };
    assert_eq!(int(&public["tables_bloat_bytes"]), sum("bloat_bytes"));
    assert_eq!(
        int(&public["indexes_bloat_bytes"]),
        sum("index_bloat_bytes")
    );
}

#[test]
fn schema_lists_tables_and_indexes() {
    let (_cluster, agent, mut client) = start();
    let body = agent.get_ok("/maintenance/world/schema/public");
    assert_eq!(keys(&body), ["indexes", "size", "tables", "total_bytes"]);

    let tables = &body["tables"];
    assert_eq!(
        names(tables, "name"),
        ["city", "country", "countrylanguage"]
    );
    for (name, rows, n_indexes) in [
        ("city", sample::CITIES, 2),
        ("country", sample::COUNTRIES, 1),
        ("countrylanguage", sample::LANGUAGES, 1),
    ] {
        let table = find(tables, "name", name);
        assert_eq!(keys(table), TABLE_KEYS);
        assert_sizes_agree(&mut client, table);
        assert_eq!(table["row_estimate"].as_f64(), Some(rows as f64), "{name}");
        assert_eq!(int(&table["n_indexes"]), n_indexes, "{name}");
        let sizes = table_sizes(&mut client, "public", name);
        for key in ["total_bytes", "table_bytes", "toast_bytes"] {
            assert_eq!(table[key], sizes[key], "{name} {key}");
        }
        assert_eq!(table["index_bytes"], sizes["index_bytes"], "{name}");
        assert!(int(&table["bloat_bytes"]) >= 0, "{table}");
        // A table's index bloat is the sum of its indexes'.
        let of_table: i64 = body["indexes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["tablename"] == name)
            .map(|i| int(&i["bloat_bytes"]))
            .sum();
        assert_eq!(int(&table["index_bloat_bytes"]), of_table, "{name}");
    }
    let total: i64 = tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| int(&t["total_bytes"]))
        .sum();
    assert_eq!(int(&body["total_bytes"]), total);
    assert_eq!(body["size"], json!(pretty(&mut client, total)));

    let indexes = &body["indexes"];
    assert_eq!(
        names(indexes, "name"),
        [
            "city_countrycode",
            "city_pkey",
            "country_pkey",
            "countrylanguage_pkey"
        ]
    );
    assert_eq!(
        find(indexes, "name", "city_pkey")["def"],
        "CREATE UNIQUE INDEX city_pkey ON public.city USING btree (id)"
    );
    for (name, table, unique, columns) in [
        ("city_countrycode", "city", false, 1),
        ("city_pkey", "city", true, 1),
        ("country_pkey", "country", true, 1),
        ("countrylanguage_pkey", "countrylanguage", true, 2),
    ] {
        let index = find(indexes, "name", name);
        assert_eq!(keys(index), INDEX_KEYS);
        assert_sizes_agree(&mut client, index);
        let expected = sql_json(
            &mut client,
            "SELECT pg_get_indexdef(s.indexrelid) AS def,
                    pg_total_relation_size(s.indexrelid) AS total_bytes,
                    s.idx_scan AS scans, s.idx_tup_read, s.idx_tup_fetch
               FROM pg_stat_all_indexes s
              WHERE s.schemaname = 'public' AND s.indexrelname = $1",
            &[&name],
        );
        for key in [
            "def",
            "total_bytes",
            "scans",
            "idx_tup_read",
            "idx_tup_fetch",
        ] {
            assert_eq!(index[key], expected[key], "{name} {key}");
        }
        assert_eq!(index["tablename"], table);
        assert_eq!(index["indexrelname"], name);
        assert_eq!(index["indisunique"], unique);
        assert_eq!(int(&index["number_of_columns"]), columns);
        assert_eq!(index["type"], "btree");
        assert_eq!(index["tablespace"], Value::Null);
        assert!(int(&index["bloat_bytes"]) >= 0);
    }

    // Another schema: a materialized view, an expression index, a hash
    // index (whose bloat is not estimated).
    let body = agent.get_ok("/maintenance/world/schema/inventory");
    let tables = &body["tables"];
    assert_eq!(names(tables, "name"), ["expensive", "item"]);
    let expensive = find(tables, "name", "expensive");
    assert_eq!(
        expensive["row_estimate"].as_f64(),
        Some(sample::EXPENSIVE_ITEMS as f64)
    );
    assert_eq!(int(&expensive["n_indexes"]), 0);
    assert_eq!(expensive["index_bytes"], 0);
    let item = find(tables, "name", "item");
    assert_eq!(item["row_estimate"].as_f64(), Some(sample::ITEMS as f64));
    let indexes = &body["indexes"];
    assert_eq!(
        names(indexes, "name"),
        ["item_label_hash", "item_lower_label", "item_pkey"]
    );
    let hash = find(indexes, "name", "item_label_hash");
    assert_eq!(hash["type"], "hash");
    assert_eq!(
        (&hash["bloat_bytes"], &hash["bloat_size"]),
        (&Value::Null, &Value::Null)
    );
    let lower = find(indexes, "name", "item_lower_label");
    assert_eq!(
        lower["def"],
        "CREATE INDEX item_lower_label ON inventory.item USING btree (lower(label))"
    );
    assert!(int(&lower["bloat_bytes"]) >= 0, "{lower}");
    // The hash index's unknown estimate counts as 0 in the table's sum.
    assert_eq!(
        int(&item["index_bloat_bytes"]),
        int(&lower["bloat_bytes"]) + int(&find(indexes, "name", "item_pkey")["bloat_bytes"])
    );
    for entry in indexes
        .as_array()
        .unwrap()
        .iter()
        .chain(tables.as_array().unwrap())
    {
        assert_sizes_agree(&mut client, entry);
    }

    assert_eq!(
        agent.get_ok("/maintenance/world/schema/empty_schema"),
        json!({"indexes": [], "size": "0 bytes", "tables": [], "total_bytes": 0})
    );
}

/// The table route's answer checked against the catalog and the
/// statistics views, field by field.
fn assert_table(agent: &Agent, client: &mut Client, schema: &str, table: &str) -> Value {
    let body = agent.get_ok(&format!(
        "/maintenance/world/schema/{}/table/{}",
        enc(schema),
        enc(table)
    ));
    assert_eq!(keys(&body), TABLE_DETAIL_KEYS);
    assert_sizes_agree(client, &body);
    assert_eq!(body["name"], table);
    assert_eq!(body["relname"], table);
    assert_eq!(body["schemaname"], schema);

    let mut select: Vec<String> = STAT_FIELDS
        .iter()
        .map(|f| {
            if f.starts_with("last_") {
                format!("s.{f}::text AS {f}")
            } else {
                format!("s.{f}")
            }
        })
        .collect();
    select.push("c.oid::text AS relid".into());
    select.push("c.reltuples::float8 AS row_estimate".into());
    let expected = sql_json(
        client,
        &format!(
            "SELECT {}
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_stat_all_tables s ON s.relid = c.oid
              WHERE n.nspname = $1 AND c.relname = $2",
            select.join(", ")
        ),
        &[&schema, &table],
    );
    for field in STAT_FIELDS.iter().chain(&["relid"]) {
        assert_eq!(body[*field], expected[*field], "{schema}.{table} {field}");
    }
    assert_eq!(
        body["row_estimate"].as_f64(),
        expected["row_estimate"].as_f64(),
        "{schema}.{table}"
    );
    let sizes = table_sizes(client, schema, table);
    for key in ["total_bytes", "table_bytes", "index_bytes", "toast_bytes"] {
        assert_eq!(body[key], sizes[key], "{schema}.{table} {key}");
    }

    let indexes = &body["indexes"];
    let mut index_bloat = 0;
    for index in indexes.as_array().unwrap() {
        assert_eq!(keys(index), INDEX_KEYS);
        assert_sizes_agree(client, index);
        assert_eq!(index["tablename"], table);
        let name = index["name"].as_str().unwrap();
        let def: String = client
            .query_one(
                "SELECT pg_get_indexdef(c.oid) FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2",
                &[&schema, &name],
            )
            .unwrap()
            .get(0);
        assert_eq!(index["def"], def);
        index_bloat += index["bloat_bytes"].as_i64().unwrap_or(0);
    }
    assert_eq!(int(&body["index_bloat_bytes"]), index_bloat);
    body
}

#[test]
fn table_shows_statistics_and_indexes() {
    let (_cluster, agent, mut client) = start();

    let city = assert_table(&agent, &mut client, "public", "city");
    // What the sample did: rows inserted, then one ANALYZE.
    for (field, value) in [
        ("n_live_tup", json!(sample::CITIES)),
        ("n_dead_tup", json!(0)),
        ("n_tup_ins", json!(sample::CITIES)),
        ("n_tup_upd", json!(0)),
        ("n_tup_del", json!(0)),
        ("n_mod_since_analyze", json!(0)),
        ("analyze_count", json!(1)),
        ("autoanalyze_count", json!(0)),
        ("vacuum_count", json!(0)),
        ("autovacuum_count", json!(0)),
        ("last_vacuum", Value::Null),
        ("last_autovacuum", Value::Null),
        ("last_autoanalyze", Value::Null),
        ("fillfactor", json!(100)),
    ] {
        assert_eq!(city[field], value, "{field}");
    }
    assert_eq!(city["row_estimate"].as_f64(), Some(sample::CITIES as f64));
    // PostgreSQL's text form of a timestamp with time zone.
    let analyzed = city["last_analyze"].as_str().expect("a timestamp");
    assert!(
        analyzed.len() > 19 && analyzed.as_bytes()[10] == b' ',
        "{analyzed}"
    );
    let relid: String = client
        .query_one("SELECT 'public.city'::regclass::oid::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(city["relid"], relid);
    assert_eq!(
        names(&city["indexes"], "name"),
        ["city_countrycode", "city_pkey"]
    );
    assert_eq!(
        find(&city["indexes"], "name", "city_countrycode")["def"],
        "CREATE INDEX city_countrycode ON public.city USING btree (countrycode)"
    );

    let item = assert_table(&agent, &mut client, "inventory", "item");
    assert_eq!(item["fillfactor"], 80);
    assert_eq!(item["n_live_tup"], sample::ITEMS);
    assert_eq!(
        names(&item["indexes"], "name"),
        ["item_label_hash", "item_lower_label", "item_pkey"]
    );

    let expensive = assert_table(&agent, &mut client, "inventory", "expensive");
    assert_eq!(expensive["n_live_tup"], sample::EXPENSIVE_ITEMS);
    assert_eq!(expensive["indexes"], json!([]));

    let country = assert_table(&agent, &mut client, "public", "country");
    assert_eq!(country["n_live_tup"], sample::COUNTRIES);
    let languages = assert_table(&agent, &mut client, "public", "countrylanguage");
    assert_eq!(languages["n_live_tup"], sample::LANGUAGES);
    assert_eq!(
        find(&languages["indexes"], "name", "countrylanguage_pkey")["number_of_columns"],
        2
    );
}

/// The bloat figures of `public.churn` at every level: (table, its
/// indexes) from the table route, the same from the schema route, the
/// public schema's sums, and the world database's sums.
struct Bloat {
    table: i64,
    indexes: i64,
    table_bytes: i64,
    index_bytes: i64,
    public: (i64, i64),
    world: (i64, i64),
}

fn bloat(agent: &Agent) -> Bloat {
    let table = agent.get_ok("/maintenance/world/schema/public/table/churn");
    let schema = agent.get_ok("/maintenance/world/schema/public");
    let entry = find(&schema["tables"], "name", "churn");
    let pkey = find(&schema["indexes"], "name", "churn_pkey");
    assert_eq!(entry["bloat_bytes"], table["bloat_bytes"]);
    assert_eq!(entry["index_bloat_bytes"], table["index_bloat_bytes"]);
    assert_eq!(pkey["bloat_bytes"], table["index_bloat_bytes"]);
    let schemas = agent.get_ok("/maintenance/world")["schemas"].clone();
    let public = find(&schemas, "name", "public");
    let instance = agent.get_ok("/maintenance")["databases"].clone();
    let world = find(&instance, "datname", "world");
    Bloat {
        table: int(&table["bloat_bytes"]),
        indexes: int(&table["index_bloat_bytes"]),
        table_bytes: int(&table["table_bytes"]),
        index_bytes: int(&table["index_bytes"]),
        public: (
            int(&public["tables_bloat_bytes"]),
            int(&public["indexes_bloat_bytes"]),
        ),
        world: (
            int(&world["tables_bloat_bytes"]),
            int(&world["indexes_bloat_bytes"]),
        ),
    }
}

#[test]
fn bloat_rises_after_updates_and_deletes_and_falls_after_vacuum_full() {
    let (_cluster, agent, mut client) = start();
    client
        .batch_execute(
            "CREATE TABLE churn (id int PRIMARY KEY, payload text NOT NULL)
               WITH (autovacuum_enabled = false);
             INSERT INTO churn SELECT i, md5(i::text) FROM generate_series(1, 20000) AS i",
        )
        .unwrap();
    sample::analyze(&mut client, "ANALYZE churn");
    let fresh = bloat(&agent);
    // A freshly written table: little more than alignment padding.
    assert!(fresh.table <= fresh.table_bytes / 10, "{}", fresh.table);
    assert!(fresh.indexes <= fresh.index_bytes / 10, "{}", fresh.indexes);

    client
        .batch_execute(
            "UPDATE churn SET payload = payload;
             UPDATE churn SET payload = payload;
             DELETE FROM churn WHERE id % 2 = 0",
        )
        .unwrap();
    sample::analyze(&mut client, "ANALYZE churn");
    let churned = bloat(&agent);
    let stats = agent.get_ok("/maintenance/world/schema/public/table/churn");
    assert_eq!(stats["n_live_tup"], 10000);
    assert!(int(&stats["n_dead_tup"]) > 0, "{stats}");
    // Three versions of every row, half of them deleted: most of the
    // table and of its index is dead space.
    assert!(
        churned.table > churned.table_bytes / 2,
        "table bloat {} of {}",
        churned.table,
        churned.table_bytes
    );
    assert!(
        churned.indexes > churned.index_bytes / 2,
        "index bloat {} of {}",
        churned.indexes,
        churned.index_bytes
    );
    // Nothing else changed: the schema's and the database's sums moved by
    // exactly as much.
    for (level, before, after) in [
        ("public", fresh.public, churned.public),
        ("world", fresh.world, churned.world),
    ] {
        assert_eq!(after.0 - before.0, churned.table - fresh.table, "{level}");
        assert_eq!(
            after.1 - before.1,
            churned.indexes - fresh.indexes,
            "{level}"
        );
    }

    sample::analyze(&mut client, "VACUUM FULL churn");
    sample::analyze(&mut client, "ANALYZE churn");
    let rewritten = bloat(&agent);
    assert!(
        rewritten.table < churned.table / 4 && rewritten.table <= fresh.table + 8192,
        "table bloat {} after VACUUM FULL ({} before)",
        rewritten.table,
        churned.table
    );
    assert!(
        rewritten.indexes < churned.indexes / 4 && rewritten.indexes <= fresh.indexes + 8192,
        "index bloat {} after VACUUM FULL ({} before)",
        rewritten.indexes,
        churned.indexes
    );
    for (level, before, after) in [
        ("public", churned.public, rewritten.public),
        ("world", churned.world, rewritten.world),
    ] {
        assert_eq!(
            before.0 - after.0,
            churned.table - rewritten.table,
            "{level}"
        );
        assert_eq!(
            before.1 - after.1,
            churned.indexes - rewritten.indexes,
            "{level}"
        );
    }

    // Every row deleted and analyzed: every page of the table is bloat.
    client.batch_execute("DELETE FROM churn").unwrap();
    sample::analyze(&mut client, "ANALYZE churn");
    let emptied = agent.get_ok("/maintenance/world/schema/public/table/churn");
    let pages = sql_i64(
        &mut client,
        "SELECT ((c.relpages + coalesce(t.relpages, 0))
                 * current_setting('block_size')::int8)::int8
           FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
          WHERE c.oid = 'churn'::regclass",
        &[],
    );
    assert!(pages > 0);
    assert_eq!(int(&emptied["bloat_bytes"]), pages);
    assert_eq!(emptied["row_estimate"].as_f64(), Some(0.0));
}

#[test]
fn unknown_names_are_404s_naming_them() {
    let (_cluster, agent, mut client) = start();
    for (path, named) in [
        ("/maintenance/nosuchdb", r#"database "nosuchdb""#),
        ("/maintenance/template0", r#"database "template0""#),
        ("/maintenance/closed", r#"database "closed""#),
        (
            "/maintenance/nosuchdb/schema/public",
            r#"database "nosuchdb""#,
        ),
        (
            "/maintenance/nosuchdb/schema/public/table/city",
            r#"database "nosuchdb""#,
        ),
        ("/maintenance/world/schema/nosuch", r#"schema "nosuch""#),
        (
            "/maintenance/postgres/schema/inventory",
            r#"schema "inventory" not found in database "postgres""#,
        ),
        (
            "/maintenance/world/schema/nosuch/table/city",
            r#"schema "nosuch""#,
        ),
        (
            "/maintenance/world/schema/public/table/nosuch",
            r#"table "nosuch" not found in schema "public" of database "world""#,
        ),
        // An index is not a table; a table of another schema is not there.
        (
            "/maintenance/world/schema/public/table/city_pkey",
            r#"table "city_pkey""#,
        ),
        (
            "/maintenance/world/schema/inventory/table/city",
            r#"table "city" not found in schema "inventory""#,
        ),
        // Names are exact: no case folding, no partial match.
        ("/maintenance/World", r#"database "World""#),
        (
            "/maintenance/world/schema/odd%20%22schema%22",
            r#"schema "odd "schema"""#,
        ),
        (
            "/maintenance/world/schema/odd%20%22schema%22.x/table/My%20Table",
            r#"table "My Table""#,
        ),
        // Never SQL.
        (
            "/maintenance/world/schema/public'%20OR%20'1'='1",
            r#"schema "public' OR '1'='1""#,
        ),
        (
            "/maintenance/world/schema/public/table/city%3B%20DROP%20TABLE%20city",
            r#"table "city; DROP TABLE city""#,
        ),
    ] {
        let (status, body) = agent.get(path);
        assert_eq!(status, 404, "GET {path}: {body}");
        assert!(
            error_text(&body).contains(named),
            "GET {path}: {body} should name {named}"
        );
    }
    let cities = sql_i64(&mut client, "SELECT count(*) FROM city", &[]);
    assert_eq!(cities, sample::CITIES);
}

#[test]
fn names_needing_quotes_work() {
    let cluster = PgCluster::start_with(&["autovacuum = off"]);
    let db = "odd \"db\".x y";
    sample::create_sample_database(&cluster, db);
    let mut client = cluster.connect(db);
    // A table whose name holds a slash and a percent sign, to be
    // percent-encoded in the path.
    client
        .batch_execute(&format!(
            "CREATE TABLE {}.\"a/b%c\" (v int); INSERT INTO {0}.\"a/b%c\" VALUES (1), (2)",
            sample::quote_ident(ODD_SCHEMA)
        ))
        .unwrap();
    sample::analyze(&mut client, "ANALYZE");
    let agent = Agent::start(&cluster, AgentOptions::new());

    let instance = agent.get_ok("/maintenance");
    assert_eq!(
        names(&instance["databases"], "datname"),
        [db, "postgres"],
        "{instance}"
    );

    let database = agent.get_ok(&format!("/maintenance/{}", enc(db)));
    let odd = find(&database["schemas"], "name", ODD_SCHEMA);
    assert_eq!((int(&odd["n_tables"]), int(&odd["n_indexes"])), (2, 2));
    assert_sizes_agree(&mut client, odd);

    let schema_path = format!("/maintenance/{}/schema/{}", enc(db), enc(ODD_SCHEMA));
    let schema = agent.get_ok(&schema_path);
    assert_eq!(names(&schema["tables"], "name"), ["a/b%c", ODD_TABLE]);
    let table = find(&schema["tables"], "name", ODD_TABLE);
    assert_eq!(
        table["row_estimate"].as_f64(),
        Some(sample::MY_TABLE_ROWS as f64)
    );
    assert_eq!(
        names(&schema["indexes"], "name"),
        [ODD_INDEX, "my table_pkey"]
    );
    assert_eq!(
        find(&schema["indexes"], "name", ODD_INDEX)["def"],
        r#"CREATE INDEX "my index" ON "odd ""schema"".x"."my table" USING btree ("my column")"#
    );
    assert_eq!(
        find(&schema["indexes"], "name", "my table_pkey")["def"],
        r#"CREATE UNIQUE INDEX "my table_pkey" ON "odd ""schema"".x"."my table" USING btree (id)"#
    );

    let body = agent.get_ok(&format!("{schema_path}/table/{}", enc(ODD_TABLE)));
    assert_eq!(body["name"], ODD_TABLE);
    assert_eq!(body["schemaname"], ODD_SCHEMA);
    assert_eq!(body["n_live_tup"], sample::MY_TABLE_ROWS);
    let relid: String = client
        .query_one(
            &format!(
                "SELECT '{}.{}'::regclass::oid::text",
                sample::quote_ident(ODD_SCHEMA).replace('\'', "''"),
                sample::quote_ident(ODD_TABLE)
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(body["relid"], relid);
    assert_eq!(
        names(&body["indexes"], "name"),
        [ODD_INDEX, "my table_pkey"]
    );
    assert_sizes_agree(&mut client, &body);

    let slashed = agent.get_ok(&format!("{schema_path}/table/{}", enc("a/b%c")));
    assert_eq!(slashed["name"], "a/b%c");
    assert_eq!(slashed["n_live_tup"], 2);
    assert_eq!(slashed["indexes"], json!([]));
}

#[test]
fn impossible_and_malformed_names_are_404s() {
    let (_cluster, agent, _client) = start();
    let long = "x".repeat(64);
    for path in [
        // A NUL, which no name can hold (PostgreSQL would refuse the parameter).
        "/maintenance/wor%00ld".to_string(),
        "/maintenance/%00".to_string(),
        "/maintenance/world/schema/public%00".to_string(),
        "/maintenance/world/schema/public/table/city%00".to_string(),
        "/maintenance/world%00/schema/public/table/city".to_string(),
        // Longer than an identifier can be.
        format!("/maintenance/{long}"),
        format!("/maintenance/world/schema/{long}"),
        format!("/maintenance/world/schema/public/table/{long}"),
        format!("/maintenance/world/schema/public/table/{}", "é".repeat(32)),
        // Malformed escapes: never decoded into something else.
        "/maintenance/world%+0".to_string(),
        "/maintenance/world/schema/public/table/city%zz".to_string(),
        "/maintenance/world/schema/pub%lic".to_string(),
        "/maintenance/world/schema/public/table/city%".to_string(),
        "/maintenance/world/schema/public/table/ci%2".to_string(),
    ] {
        let (status, body) = agent.get(&path);
        assert_eq!(status, 404, "GET {path}: {body}");
        assert!(body["error"].is_string(), "GET {path}: {body}");
    }
}

#[test]
fn reads_do_not_wait_on_a_locked_table() {
    let (cluster, agent, mut client) = start();
    let mut holder = cluster.connect("world");
    holder
        .batch_execute("BEGIN; LOCK TABLE city IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let says_why =
        |text: &str| text.contains(&format!("pid {holder_pid} holds an ACCESS EXCLUSIVE lock"));
    let timed = |path: &str| {
        let start = std::time::Instant::now();
        let (status, body) = agent.get(path);
        let took = start.elapsed();
        assert_eq!(status, 200, "GET {path}: {body}");
        assert!(
            took < std::time::Duration::from_secs(4),
            "GET {path} took {took:?}"
        );
        body
    };

    let instance = timed("/maintenance");
    let world = find(&instance["databases"], "datname", "world");
    assert!(
        world["unavailable"].as_str().is_some_and(says_why),
        "{world}"
    );
    let database = timed("/maintenance/world");
    let public = find(&database["schemas"], "name", "public");
    let why = public["unavailable"].as_str().unwrap_or_default();
    assert!(why.contains("public.city") && says_why(why), "{public}");
    // The other schemas are whole.
    let inventory = find(&database["schemas"], "name", "inventory");
    assert!(inventory.get("unavailable").is_none(), "{inventory}");
    assert_eq!(keys(inventory), SCHEMA_KEYS);

    let schema = timed("/maintenance/world/schema/public");
    assert!(
        schema["unavailable"].as_str().is_some_and(says_why),
        "{schema}"
    );
    let city = find(&schema["tables"], "name", "city");
    assert!(city["unavailable"].as_str().is_some_and(says_why), "{city}");
    assert_eq!(city["total_bytes"], Value::Null, "{city}");
    assert_eq!(city["row_estimate"].as_f64(), Some(sample::CITIES as f64));
    // Its neighbours are measured as usual.
    let country = find(&schema["tables"], "name", "country");
    assert_eq!(keys(country), TABLE_KEYS);
    assert_eq!(
        country["total_bytes"],
        table_sizes(&mut client, "public", "country")["total_bytes"]
    );
    let city_pkey = find(&schema["indexes"], "name", "city_pkey");
    assert!(
        city_pkey["unavailable"].as_str().is_some_and(says_why),
        "{city_pkey}"
    );
    assert_eq!(city_pkey["def"], Value::Null);

    let table = timed("/maintenance/world/schema/public/table/city");
    assert!(
        table["unavailable"].as_str().is_some_and(says_why),
        "{table}"
    );
    assert_eq!(table["total_bytes"], Value::Null, "{table}");
    assert_eq!(table["n_live_tup"], sample::CITIES, "{table}");

    // Once the lock is gone, everything is back.
    holder.batch_execute("COMMIT").unwrap();
    let table = agent.get_ok("/maintenance/world/schema/public/table/city");
    assert!(table.get("unavailable").is_none(), "{table}");
    assert_eq!(keys(&table), TABLE_DETAIL_KEYS);
}

/// How many tables the scale test creates: as many as the benchmark's
/// database (`bench/sql/big-database.sql`).
const MANY_TABLES: usize = 10_000;

/// The scale test's memory limit for the maintenance plugin: three eighths
/// of the default (64 MiB). The schema's answer is about 7.5 MB of JSON;
/// before PostgreSQL built it, every row was copied into the plugin and
/// again into JSON, and the plugin broke even the default limit (a 500
/// naming the memory limit).
const SCALE_MEMORY_MIB: u64 = 24;

#[test]
fn ten_thousand_tables_are_listed_within_a_fraction_of_the_memory_limit() {
    let cluster = PgCluster::start_with(&["autovacuum = off"]);
    let mut admin = cluster.connect("postgres");
    admin.batch_execute("CREATE DATABASE big").unwrap();
    drop(admin);
    // Two sessions (the machine may have two cores), each one statement
    // committing every 500 tables: all of them in one transaction would
    // need more locks than the default lock table holds.
    let half = MANY_TABLES / 2;
    std::thread::scope(|scope| {
        for first in [1, half + 1] {
            let mut client = cluster.connect("big");
            scope.spawn(move || {
                client
                    .batch_execute(&format!(
                        "DO $$
                         BEGIN
                           FOR i IN {first}..{last} LOOP
                             EXECUTE format('CREATE TABLE public.%I (id int PRIMARY KEY)',
                                            'big_' || lpad(i::text, 5, '0'));
                             IF i % 500 = 0 THEN COMMIT; END IF;
                           END LOOP;
                         END $$",
                        last = first + half - 1
                    ))
                    .unwrap();
            });
        }
    });
    let agent = Agent::start(
        &cluster,
        AgentOptions::new().config(&format!(
            "[plugin.maintenance]\nmemory_mib = {SCALE_MEMORY_MIB}"
        )),
    );
    let expected: Vec<String> = (1..=MANY_TABLES).map(|i| format!("big_{i:05}")).collect();

    let schema = agent.get_ok("/maintenance/big/schema/public");
    assert_eq!(keys(&schema), ["indexes", "size", "tables", "total_bytes"]);
    let tables = names(&schema["tables"], "name");
    assert_eq!(tables, expected, "every table, by name");
    let indexes = names(&schema["indexes"], "tablename");
    assert_eq!(indexes, expected, "every table's primary key");
    for table in schema["tables"].as_array().unwrap() {
        assert_eq!(keys(table), TABLE_KEYS);
        assert_eq!(int(&table["n_indexes"]), 1, "{table}");
    }
    for index in schema["indexes"].as_array().unwrap() {
        assert_eq!(keys(index), INDEX_KEYS);
    }
    let total: i64 = schema["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| int(&t["total_bytes"]))
        .sum();
    assert_eq!(int(&schema["total_bytes"]), total);

    let database = agent.get_ok("/maintenance/big");
    let public = find(&database["schemas"], "name", "public");
    assert_eq!(
        (int(&public["n_tables"]), int(&public["n_indexes"])),
        (MANY_TABLES as i64, MANY_TABLES as i64),
        "{public}"
    );
    assert_eq!(int(&public["total_bytes"]), total);

    let instance = agent.get_ok("/maintenance");
    let big = find(&instance["databases"], "datname", "big");
    assert!(int(&big["n_tables"]) > MANY_TABLES as i64, "{big}");

    let table = agent.get_ok("/maintenance/big/schema/public/table/big_04242");
    assert_eq!(table["name"], "big_04242");
    assert_eq!(names(&table["indexes"], "name"), ["big_04242_pkey"]);
}

#[test]
fn a_role_that_cannot_read_pg_statistic_gets_the_same_answers() {
    let (cluster, superuser, mut client) = start();
    // A monitoring role that may read the sample's tables (so that pg_stats
    // shows it their statistics) but not pg_statistic itself.
    client
        .batch_execute(&format!(
            "CREATE ROLE monitor LOGIN IN ROLE pg_monitor;
             GRANT USAGE ON SCHEMA inventory, {odd} TO monitor;
             GRANT SELECT ON ALL TABLES IN SCHEMA public, inventory, {odd} TO monitor",
            odd = sample::quote_ident(ODD_SCHEMA)
        ))
        .unwrap();
    let can_read: bool = client
        .query_one(
            "SELECT has_table_privilege('monitor', 'pg_catalog.pg_statistic', 'SELECT')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!can_read);
    let mut monitor = Agent::start(&cluster, AgentOptions::new());
    let config = std::fs::read_to_string(monitor.config_path()).unwrap();
    std::fs::write(
        monitor.config_path(),
        config.replace("user = \"postgres\"", "user = \"monitor\""),
    )
    .unwrap();
    monitor.restart().unwrap();

    let odd = enc(ODD_SCHEMA);
    for path in [
        "/maintenance/world/schema/public".to_string(),
        format!("/maintenance/world/schema/{odd}"),
        "/maintenance/world/schema/public/table/city".to_string(),
        format!("/maintenance/world/schema/{odd}/table/{}", enc(ODD_TABLE)),
    ] {
        let expected = superuser.get_ok(&path);
        assert_eq!(monitor.get_ok(&path), expected, "GET {path}");
    }
    let schemas = superuser.get_ok("/maintenance/world")["schemas"].clone();
    let seen = monitor.get_ok("/maintenance/world")["schemas"].clone();
    for name in ["public", ODD_SCHEMA, "empty_schema"] {
        assert_eq!(
            find(&seen, "name", name),
            find(&schemas, "name", name),
            "{name}"
        );
    }
    // pg_stats shows the statistics of an index's expressions to the
    // index's owner only: the expression index's bloat is not estimated,
    // all the rest is the same.
    let expected = superuser.get_ok("/maintenance/world/schema/inventory");
    let got = monitor.get_ok("/maintenance/world/schema/inventory");
    let lower = find(&got["indexes"], "name", "item_lower_label");
    assert_eq!(lower["bloat_bytes"], Value::Null, "{lower}");
    for (list, key) in [("tables", "name"), ("indexes", "name")] {
        for entry in got[list].as_array().unwrap() {
            let other = find(&expected[list], key, entry[key].as_str().unwrap());
            for (field, value) in entry.as_object().unwrap() {
                if !field.contains("bloat") {
                    assert_eq!(value, &other[field], "{list} {field}: {entry}");
                }
            }
        }
    }
}

/// The plugin writes the definition of a plain btree index itself (see
/// `idx_def` in the plugin); every other is `pg_get_indexdef`'s. Either way
/// it must be `pg_get_indexdef`'s text exactly.
#[test]
fn index_definitions_are_pg_get_indexdef() {
    let (_cluster, agent, mut client) = start();
    client
        .batch_execute(
            r#"CREATE DOMAIN posint AS int CHECK (VALUE > 0);
               CREATE SCHEMA zoo;
               CREATE TABLE zoo."T a" (id int, "Col A" text, b varchar(10), c posint,
                                       d int[], e numeric, f text COLLATE "C", g timestamptz);
               CREATE UNIQUE INDEX "pk idx" ON zoo."T a" (id);
               CREATE INDEX i_desc ON zoo."T a" (id DESC, "Col A" ASC NULLS FIRST, e DESC NULLS LAST);
               CREATE INDEX i_incl ON zoo."T a" (id) INCLUDE ("Col A", e);
               CREATE UNIQUE INDEX i_nnd ON zoo."T a" (e) NULLS NOT DISTINCT;
               CREATE INDEX i_coll ON zoo."T a" ("Col A" COLLATE "C");
               CREATE INDEX i_coll_same ON zoo."T a" (f COLLATE "C");
               CREATE INDEX i_ops ON zoo."T a" ("Col A" text_pattern_ops);
               CREATE INDEX i_varchar ON zoo."T a" (b);
               CREATE INDEX i_domain ON zoo."T a" (c);
               CREATE INDEX i_arr ON zoo."T a" (d);
               CREATE INDEX i_part ON zoo."T a" (id) WHERE id > 5;
               CREATE INDEX i_ff ON zoo."T a" (id) WITH (fillfactor = 50);
               CREATE INDEX i_expr ON zoo."T a" (lower("Col A"));
               CREATE INDEX i_gin ON zoo."T a" USING gin (d);
               CREATE INDEX "select" ON zoo."T a" (g, id);
               CREATE UNLOGGED TABLE zoo.ul (id int PRIMARY KEY, v text);
               CREATE TABLE zoo.pt (id int, v int) PARTITION BY RANGE (id);
               CREATE TABLE zoo.pt1 PARTITION OF zoo.pt FOR VALUES FROM (0) TO (10);
               CREATE INDEX pt_v ON zoo.pt (v);
               INSERT INTO zoo.pt VALUES (1, 1);
               CREATE MATERIALIZED VIEW zoo.mv AS SELECT 1 AS x;
               CREATE INDEX mv_x ON zoo.mv (x);"#,
        )
        .unwrap();
    let schema = agent.get_ok("/maintenance/world/schema/zoo");
    let indexes = schema["indexes"].as_array().unwrap();
    assert_eq!(indexes.len(), 19, "{schema}");
    let expected_def = |client: &mut Client, name: &str| -> String {
        client
            .query_one(
                "SELECT pg_get_indexdef(c.oid) FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'zoo' AND c.relname = $1",
                &[&name],
            )
            .unwrap()
            .get(0)
    };
    for index in indexes {
        let name = index["name"].as_str().unwrap();
        assert_eq!(index["def"], expected_def(&mut client, name), "{name}");
    }
    let table = agent.get_ok("/maintenance/world/schema/zoo/table/T%20a");
    for index in table["indexes"].as_array().unwrap() {
        let name = index["name"].as_str().unwrap();
        assert_eq!(index["def"], expected_def(&mut client, name), "{name}");
    }
    // Unlogged (an init fork), partitioned (no storage), materialized view:
    // each measured as pg_total_relation_size says.
    for name in ["T a", "ul", "pt", "pt1", "mv"] {
        let entry = find(&schema["tables"], "name", name);
        let sizes = table_sizes(&mut client, "zoo", name);
        for key in ["total_bytes", "table_bytes", "index_bytes", "toast_bytes"] {
            assert_eq!(entry[key], sizes[key], "{name} {key}");
        }
    }
    let ul_pkey = find(&schema["indexes"], "name", "ul_pkey");
    assert_eq!(
        int(&ul_pkey["total_bytes"]),
        sql_i64(
            &mut client,
            "SELECT pg_total_relation_size('zoo.ul_pkey')",
            &[]
        )
    );
    let zoo = find(
        &agent.get_ok("/maintenance/world")["schemas"],
        "name",
        "zoo",
    )
    .clone();
    assert_sums(&zoo, &schema_sums(&mut client, Some("zoo")));
    assert_eq!(
        zoo["total_bytes"],
        schema_sums(&mut client, Some("zoo"))["total_bytes"]
    );
}
