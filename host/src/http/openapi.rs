//! `GET /openapi.json`: an OpenAPI 3.1 description of every route the
//! running agent serves. The host describes its native routes; each plugin
//! ships a fragment for its own (checked when it is loaded), and the host
//! adds what it decides itself: who may call an operation (`security`) and
//! the answers it gives on the plugin's behalf (401, 406, 413, 500, 503, 504).

use super::routes::{self, NativeRoute};
use crate::auth::access::RouteClass;
use crate::plugins::PluginSet;
use crate::plugins::fragment::{Fragment, METHODS};
use crate::plugins::manifest::{AuthStyle, Manifest};
use crate::plugins::runtime::Plugin;
use serde_json::{Map, Value, json};

const SCHEMA_REF: &str = "#/components/schemas/";

/// The whole document for the plugins of `set`.
pub fn document(set: &PluginSet) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "description": "temBoard's error shape, used by the host for every error it answers",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        }),
    );
    for (path, mut item) in native_paths() {
        if let Value::Object(operations) = &mut item {
            for (method, operation) in operations.iter_mut() {
                if let Some(route) = routes::find(&method.to_uppercase(), &path) {
                    finish_native(operation, route);
                }
            }
        }
        paths.insert(path, item);
    }
    for plugin in &set.list {
        if plugin.manifest.routes.is_empty() {
            continue;
        }
        let fragment = plugin.openapi.as_deref().map(|text| {
            Fragment::parse(text, &plugin.manifest).inspect_err(
                |e| tracing::warn!(plugin = %plugin.name, "OpenAPI fragment left out: {e:#}"),
            )
        });
        let (plugin_paths, plugin_schemas) = match fragment {
            Some(Ok(fragment)) => namespaced(&plugin.name, &fragment),
            _ => (undescribed(&plugin.manifest), Map::new()),
        };
        for (path, mut item) in plugin_paths {
            if let Value::Object(operations) = &mut item {
                for (method, operation) in operations.iter_mut() {
                    if METHODS.contains(&method.as_str()) {
                        finish_plugin(operation, plugin, method);
                    }
                }
            }
            paths.insert(path, item);
        }
        schemas.extend(plugin_schemas);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dbagent",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The routes this agent serves now: its own, and those of the plugins it has loaded.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {
                    "type": "apiKey", "in": "header", "name": "X-Session",
                    "description": "A session from POST /login (temBoard's way).",
                },
                "bearer": {
                    "type": "http", "scheme": "bearer",
                    "description": "An API token of [auth] api_tokens, or a session.",
                },
                "agentKey": {
                    "type": "apiKey", "in": "header", "name": "X-TemBoard-Agent-Key",
                    "description": "The agent key: reads the read-only areas (also accepted as ?key=).",
                },
            },
        },
    })
}

/// The fragment with its schema names prefixed by the plugin's name, and
/// references to them rewritten, so that two plugins never collide.
fn namespaced(plugin: &str, fragment: &Fragment) -> (Map<String, Value>, Map<String, Value>) {
    let rename = |value: &Value| {
        let mut value = value.clone();
        rewrite_refs(&mut value, plugin, &fragment.schemas);
        value
    };
    let paths = fragment
        .paths
        .iter()
        .map(|(path, item)| (path.clone(), rename(item)))
        .collect();
    let schemas = fragment
        .schemas
        .iter()
        .map(|(name, schema)| (format!("{plugin}.{name}"), rename(schema)))
        .collect();
    (paths, schemas)
}

fn rewrite_refs(value: &mut Value, plugin: &str, own: &Map<String, Value>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "$ref"
                    && let Value::String(target) = child
                    && let Some(name) = target.strip_prefix(SCHEMA_REF)
                    && own.contains_key(name)
                {
                    *target = format!("{SCHEMA_REF}{plugin}.{name}");
                } else {
                    rewrite_refs(child, plugin, own);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_refs(item, plugin, own)),
        _ => {}
    }
}

/// A plugin that ships no fragment: its prefixes, said to be undescribed.
fn undescribed(manifest: &Manifest) -> Map<String, Value> {
    let operation = |method: &str| {
        json!({
            "operationId": format!("{}_{method}", manifest.name),
            "summary": format!("Served by plugin '{}', which ships no description", manifest.name),
            "responses": {"default": {"description": "Whatever the plugin answers."}},
        })
    };
    manifest
        .routes
        .iter()
        .map(|prefix| {
            (
                prefix.clone(),
                json!({"get": operation("get"), "post": operation("post")}),
            )
        })
        .collect()
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("{SCHEMA_REF}Error")}}},
    })
}

/// Who may call an operation, and the refusals that go with it.
fn add_access(operation: &mut Map<String, Value>, class: RouteClass, method: &str) {
    let security = match class {
        RouteClass::Open => json!([]),
        RouteClass::KeyReadable if method == "get" => {
            json!([{"session": []}, {"bearer": []}, {"agentKey": []}])
        }
        RouteClass::Api => json!([{"bearer": []}, {"session": []}]),
        RouteClass::KeyReadable | RouteClass::Authenticated => {
            json!([{"session": []}, {"bearer": []}])
        }
    };
    operation.insert("security".into(), security);
    if class == RouteClass::Open {
        return;
    }
    add_responses(
        operation,
        &[("401", "The credential is unknown, expired or wrong.")],
    );
    if class != RouteClass::Api {
        add_responses(
            operation,
            &[("406", "No credential, or a malformed one (temBoard's way).")],
        );
    }
}

/// Adds the answers the host gives itself to an operation's responses,
/// where the fragment does not say them already.
fn add_responses(operation: &mut Map<String, Value>, answers: &[(&str, &str)]) {
    let mut responses = match operation.remove("responses") {
        Some(Value::Object(responses)) => responses,
        _ => Map::new(),
    };
    for (status, description) in answers {
        responses
            .entry(*status)
            .or_insert_with(|| error_response(description));
    }
    operation.insert("responses".into(), Value::Object(responses));
}

fn finish_native(operation: &mut Value, route: &NativeRoute) {
    let Value::Object(operation) = operation else {
        return;
    };
    operation.insert("tags".into(), json!(["agent"]));
    add_access(operation, route.class, &route.method.to_lowercase());
}

fn finish_plugin(operation: &mut Value, plugin: &Plugin, method: &str) {
    let Value::Object(operation) = operation else {
        return;
    };
    operation.insert("tags".into(), json!([&*plugin.name]));
    let class = routes::class_of(&method.to_uppercase(), None, Some(&plugin.manifest));
    add_access(operation, class, method);
    if matches!(method, "post" | "put" | "patch" | "delete") {
        add_responses(
            operation,
            &[("413", "The body is larger than [server] max_body_bytes.")],
        );
    }
    add_responses(
        operation,
        &[
            (
                "500",
                "The plugin failed (a trap or a panic): the message says which.",
            ),
            (
                "503",
                "The plugin is disabled, or no instance was free within its deadline.",
            ),
            ("504", "The plugin ran past its deadline."),
        ],
    );
    if plugin.manifest.auth == AuthStyle::Bearer {
        operation
            .entry("x-dbagent-auth")
            .or_insert_with(|| json!("bearer"));
    }
}

/// The host's own routes: parameters, bodies and answers. Access and its
/// refusals are added from the route table.
fn native_paths() -> Vec<(String, Value)> {
    let ok = |description: &str, schema: Value| json!({"description": description, "content": {"application/json": {"schema": schema}}});
    let string = json!({"type": "string"});
    let nullable_string = json!({"type": ["string", "null"]});
    let integer = json!({"type": "integer"});
    let plugin_versions = json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": string, "version": string},
        },
    });
    vec![
        (
            "/status".into(),
            json!({"get": {
                "operationId": "status",
                "summary": "The agent's state (temBoard's /status), with what it serves",
                "responses": {"200": ok("The agent is up.", json!({
                    "type": "object",
                    "required": ["start_datetime", "version", "user", "pid", "configfile", "plugins"],
                    "properties": {
                        "start_datetime": string, "reload_datetime": nullable_string,
                        "version": string, "user": string, "pid": integer,
                        "configfile": string, "hostname": string, "os": string,
                        "pg_host": string, "pg_port": integer, "plugins": plugin_versions,
                    },
                }))},
            }}),
        ),
        (
            "/discover".into(),
            json!({"get": {
                "operationId": "discover",
                "summary": "What temBoard's registration reads: host, PostgreSQL, plugins",
                "parameters": [{
                    "name": "X-TemBoard-Agent-Key", "in": "header", "required": false,
                    "schema": string,
                    "description": "When sent, it must be the agent key (401 otherwise).",
                }],
                "responses": {
                    "200": ok("Discovery; PostgreSQL fields are null while it is unreachable.", json!({
                        "type": "object",
                        "required": ["hostname", "cpu", "memory_size", "pg_port", "plugins"],
                        "properties": {
                            "hostname": string, "cpu": integer, "memory_size": integer,
                            "pg_port": integer,
                            "pg_version": nullable_string, "pg_version_summary": nullable_string,
                            "pg_data": nullable_string,
                            "pg_block_size": {"type": ["integer", "null"]},
                            "plugins": {"type": "array", "items": string},
                        },
                    })),
                    "401": error_response("A key was sent and it is not the agent key."),
                },
            }}),
        ),
        (
            "/login".into(),
            json!({"post": {
                "operationId": "login",
                "summary": "Opens a session for a user of the users file",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {"username": string, "password": string},
                }}}},
                "responses": {
                    "200": ok("The session to send as X-Session.", json!({
                        "type": "object", "required": ["session"],
                        "properties": {"session": string},
                    })),
                    "400": error_response("The body is not a JSON object."),
                    "404": error_response("Unknown user or wrong password (temBoard's answer)."),
                    "406": error_response("A parameter is missing or malformed."),
                    "413": error_response("The body is larger than [server] max_body_bytes."),
                    "429": error_response("Too many failed attempts from this address: wait (Retry-After)."),
                    "503": error_response("Too many password checks at once: retry (Retry-After)."),
                },
            }}),
        ),
        (
            "/logout".into(),
            json!({"get": {
                "operationId": "logout",
                "summary": "Ends the session presented",
                "responses": {"200": ok("Logged out.", json!({
                    "type": "object", "required": ["logout"],
                    "properties": {"logout": {"type": "boolean"}},
                }))},
            }}),
        ),
        (
            "/profile".into(),
            json!({"get": {
                "operationId": "profile",
                "summary": "Who the credential is",
                "responses": {"200": ok("The user (api-token for a token, temboard for the key).", json!({
                    "type": "object", "required": ["username"],
                    "properties": {"username": nullable_string},
                }))},
            }}),
        ),
        (
            "/notifications".into(),
            json!({"get": {
                "operationId": "notifications",
                "summary": "The agent's notification feed, newest last",
                "responses": {"200": ok("The feed.", json!({
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["date", "username", "message"],
                        "properties": {"date": string, "username": string, "message": string},
                    },
                }))},
            }}),
        ),
        (
            "/ping".into(),
            json!({"get": {
                "operationId": "ping",
                "summary": "Answers at once: the cheapest authenticated route",
                "responses": {"200": ok("Pong.", json!({
                    "type": "object", "required": ["pong"],
                    "properties": {"pong": {"type": "boolean"}},
                }))},
            }}),
        ),
        (
            "/plugins".into(),
            json!({"get": {
                "operationId": "plugins",
                "summary": "The plugins in service, and those the last reload refused",
                "responses": {"200": ok("One entry per plugin; refused ones carry the reason.", json!({
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "status"],
                        "properties": {
                            "name": string, "version": string, "description": string,
                            "routes": {"type": "array", "items": string},
                            "capabilities": {"type": "array", "items": string},
                            "bundled": {"type": "boolean"}, "key_read": {"type": "boolean"},
                            "status": {"enum": ["serving", "disabled", "refused"]},
                            "reason": nullable_string, "origin": string,
                        },
                    },
                }))},
            }}),
        ),
        (
            "/openapi.json".into(),
            json!({"get": {
                "operationId": "openapi",
                "summary": "This description",
                "responses": {"200": ok("OpenAPI 3.1.", json!({"type": "object"}))},
            }}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(routes: &[&str]) -> crate::plugins::manifest::Manifest {
        let routes: Vec<String> = routes.iter().map(|r| format!("\"{r}\"")).collect();
        crate::plugins::manifest::Manifest::parse(
            &format!(
                "name = \"p\"\nversion = \"1\"\nroutes = [{}]\n",
                routes.join(", ")
            ),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn every_native_route_is_described_and_nothing_else() {
        let described: Vec<(String, String)> = native_paths()
            .into_iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(|m| (m.to_uppercase(), path.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for route in routes::NATIVE {
            assert!(
                described.contains(&(route.method.to_string(), route.path.to_string())),
                "{} {} is not described",
                route.method,
                route.path
            );
        }
        for (method, path) in &described {
            assert!(
                routes::find(method, path).is_some(),
                "{method} {path} is described but not served"
            );
        }
    }

    #[test]
    fn fragments_stay_under_their_prefixes_and_get_their_own_schema_names() {
        let m = manifest(&["/p"]);
        let outside = r#"{"paths": {"/activity": {"get": {}}}}"#;
        let e = Fragment::parse(outside, &m).unwrap_err().to_string();
        assert!(e.contains("\"/activity\" is not under"), "{e}");
        let sibling = r#"{"paths": {"/pp": {"get": {}}}}"#;
        assert!(Fragment::parse(sibling, &m).is_err());
        let typo = r#"{"path": {}}"#;
        assert!(Fragment::parse(typo, &m).is_err());
        let ok = r##"{
            "paths": {"/p/{id}": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}, "404": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}}},
            "components": {"schemas": {"Thing": {"type": "object", "properties": {"again": {"$ref": "#/components/schemas/Thing"}}}}}
        }"##;
        let fragment = Fragment::parse(ok, &m).unwrap();
        let (paths, schemas) = namespaced("p", &fragment);
        let text = serde_json::to_string(&paths).unwrap();
        assert!(text.contains("#/components/schemas/p.Thing"), "{text}");
        // The host's own schema keeps its name.
        assert!(text.contains("\"#/components/schemas/Error\""), "{text}");
        assert!(
            schemas["p.Thing"]
                .to_string()
                .contains("#/components/schemas/p.Thing"),
            "{schemas:?}"
        );
    }

    #[test]
    fn every_bundled_fragment_is_valid() {
        let sources = crate::plugins::loader::bundled().unwrap();
        for source in sources {
            if source.manifest.routes.is_empty() {
                continue;
            }
            let Some(text) = &source.openapi else {
                panic!("{} serves routes and ships no openapi.json", source.origin);
            };
            Fragment::parse(text, &source.manifest)
                .unwrap_or_else(|e| panic!("the OpenAPI fragment of {}: {e:#}", source.origin));
        }
    }
}
