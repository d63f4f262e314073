//! A plugin built without the SDK, against a world of its own (`wit/`,
//! with the `dbagent:api` package under `wit/deps`): it imports only
//! `postgres` and `log` and exports only the handler. `GET /narrow` answers
//! `{"sum": N}` from a parameterized query.

wit_bindgen::generate!({
    path: "wit",
    world: "narrow",
    generate_all,
});

use dbagent::api::http_types::{Header, Request, Response};
use dbagent::api::{log, postgres};
use exports::dbagent::api::handler::Guest;

struct Narrow;

impl Guest for Narrow {
    fn handle(_request: Request) -> Response {
        log::log(log::Level::Info, "narrow: adding two numbers in PostgreSQL");
        let answer = postgres::query(
            None,
            "SELECT $1::int8 + $2::int8 AS sum",
            &[postgres::Value::Int(40), postgres::Value::Int(2)],
        );
        let (status, body) = match answer {
            Ok(rows) => match rows.rows.first().and_then(|row| row.first()) {
                Some(postgres::Value::Int(sum)) => (200, format!("{{\"sum\": {sum}}}")),
                _ => (500, "{\"error\": \"no sum\"}".to_string()),
            },
            Err(e) => (500, format!("{{\"error\": {:?}}}", e.message)),
        };
        Response {
            status,
            headers: vec![Header {
                name: "content-type".into(),
                value: "application/json".into(),
            }],
            body: body.into_bytes(),
        }
    }
}

export!(Narrow);
