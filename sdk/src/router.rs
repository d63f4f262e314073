use crate::http::percent_decode;
use crate::{Error, Request, Response};

/// Path parameters captured by a route pattern, already percent-decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The value of `:name`; routes only match when every parameter is
    /// present, so a handler may rely on the names of its own pattern.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// A handler: the request, the captured parameters, and a response or an error.
pub type Handler = fn(&Request, &Params) -> Result<Response, Error>;

enum Segment {
    Literal(String),
    Param(String),
}

struct Route {
    method: &'static str,
    segments: Vec<Segment>,
    handler: Handler,
}

/// Routes requests on the path that follows the plugin's prefix.
///
/// Patterns are `/`-separated; `:name` captures one segment. Literal
/// segments beat parameters: when two patterns of the method match, the one
/// with the earlier literal wins, so `/vacuum/scheduled` is never taken for
/// `/:db`. An unmatched path is a 404 `URL not found.`; a path whose most
/// literal pattern is another method's is a 405. Path segments and the query string go through
/// one strict decoder: a malformed escape (`%zz`, `%+1`, a lone `%`) in a
/// segment is a 404, in the query string a 406 `Parameter 'NAME' is
/// malformed.`, before any handler runs.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub fn new() -> Self {
        Router::default()
    }

    pub fn route(mut self, method: &'static str, pattern: &str, handler: Handler) -> Self {
        let segments = split(pattern)
            .map(|s| match s.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_string()),
                None => Segment::Literal(s.to_string()),
            })
            .collect();
        self.routes.push(Route {
            method,
            segments,
            handler,
        });
        self
    }

    pub fn get(self, pattern: &str, handler: Handler) -> Self {
        self.route("GET", pattern, handler)
    }

    pub fn post(self, pattern: &str, handler: Handler) -> Self {
        self.route("POST", pattern, handler)
    }

    pub fn delete(self, pattern: &str, handler: Handler) -> Self {
        self.route("DELETE", pattern, handler)
    }

    pub fn put(self, pattern: &str, handler: Handler) -> Self {
        self.route("PUT", pattern, handler)
    }

    pub fn patch(self, pattern: &str, handler: Handler) -> Self {
        self.route("PATCH", pattern, handler)
    }

    pub fn handle(&self, request: &Request) -> Result<Response, Error> {
        let mut decoded = Vec::new();
        for raw in split(&request.path) {
            match percent_decode(raw, false) {
                Some(segment) => decoded.push(segment),
                None => return Err(Error::not_found("URL not found.")),
            }
        }

        // Among the patterns of the request's method, the most literal one
        // answers, unless a pattern of another method is literal everywhere
        // it is and more: then the path is that pattern's, and the method is
        // wrong (`GET /kill` is a 405, not `GET /:pid` with pid "kill"). A
        // pattern literal elsewhere does not shadow it (`POST /:db/vacuum`
        // serves a database named "vacuum" beside `DELETE /vacuum/:id`).
        let candidates: Vec<(&Route, Params, Vec<bool>)> = self
            .routes
            .iter()
            .filter_map(|route| matches(route, &decoded).map(|(p, l)| (route, p, l)))
            .collect();
        if candidates.is_empty() {
            return Err(Error::not_found("URL not found."));
        }
        request.check_query()?;
        let best = candidates
            .iter()
            .filter(|(route, _, _)| route.method == request.method)
            .max_by(|a, b| a.2.cmp(&b.2));
        let Some((route, params, literals)) = best else {
            return Err(Error::new(405, "Method not allowed."));
        };
        let shadowed = candidates.iter().any(|(other, _, other_literals)| {
            other.method != request.method
                && other_literals != literals
                && literals
                    .iter()
                    .zip(other_literals)
                    .all(|(mine, theirs)| !mine || *theirs)
        });
        if shadowed {
            return Err(Error::new(405, "Method not allowed."));
        }
        (route.handler)(request, params)
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// The captured parameters and, per segment, whether it matched a literal.
fn matches(route: &Route, segments: &[String]) -> Option<(Params, Vec<bool>)> {
    if route.segments.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    let mut literals = Vec::with_capacity(segments.len());
    for (pattern, segment) in route.segments.iter().zip(segments) {
        match pattern {
            Segment::Literal(lit) if lit == segment => literals.push(true),
            Segment::Literal(_) => return None,
            Segment::Param(name) => {
                params.push((name.clone(), segment.clone()));
                literals.push(false);
            }
        }
    }
    Some((Params(params), literals))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_with(tag: &'static str) -> Result<Response, Error> {
        Ok(Response::ok(tag))
    }
    fn root(_: &Request, _: &Params) -> Result<Response, Error> {
        ok_with("root")
    }
    fn db(_: &Request, p: &Params) -> Result<Response, Error> {
        Ok(Response::ok(p.get("db")))
    }
    fn scheduled(_: &Request, _: &Params) -> Result<Response, Error> {
        ok_with("scheduled")
    }

    fn get(router: &Router, path: &str) -> Result<Response, Error> {
        router.handle(&Request {
            method: "GET".into(),
            path: path.into(),
            ..Default::default()
        })
    }

    fn body(r: Result<Response, Error>) -> String {
        String::from_utf8(r.unwrap().body).unwrap()
    }

    #[test]
    fn routes_and_params() {
        let router = Router::new()
            .get("/", root)
            .get("/:db", db)
            .get("/scheduled", scheduled)
            .post("/kill", root);
        assert_eq!(body(get(&router, "")), "\"root\"");
        assert_eq!(body(get(&router, "/")), "\"root\"");
        assert_eq!(body(get(&router, "/scheduled")), "\"scheduled\"");
        assert_eq!(body(get(&router, "/my%20db")), "\"my db\"");
        assert_eq!(body(get(&router, "/a%2Fb")), "\"a/b\"");
        assert_eq!(get(&router, "/a/b").unwrap_err().status, 404);
        assert_eq!(get(&router, "/kill").unwrap_err().status, 405);
        assert_eq!(get(&router, "/%zz").unwrap_err().status, 404);
        assert_eq!(get(&router, "/%+1").unwrap_err().status, 404);
        assert_eq!(get(&router, "/a%").unwrap_err().status, 404);
        assert_eq!(body(get(&router, "/a+b")), "\"a+b\"");
    }

    /// Found by schemathesis: a database named like an action's literal
    /// got a 405 from the pattern of another method.
    #[test]
    fn another_methods_pattern_shadows_only_where_it_is_more_literal() {
        let router = Router::new()
            .post("/:db/vacuum", db)
            .delete("/vacuum/:id", scheduled)
            .get("/vacuum/scheduled", scheduled);
        let call = |method: &str, path: &str| {
            router.handle(&Request {
                method: method.into(),
                path: path.into(),
                ..Default::default()
            })
        };
        assert_eq!(body(call("POST", "/vacuum/vacuum")), "\"vacuum\"");
        assert_eq!(body(call("DELETE", "/vacuum/vacuum")), "\"scheduled\"");
        assert_eq!(call("DELETE", "/vacuum/scheduled").unwrap_err().status, 405);
        assert_eq!(call("GET", "/vacuum/x").unwrap_err().status, 405);
        assert_eq!(call("PUT", "/x/vacuum").unwrap_err().status, 405);
    }

    #[test]
    fn malformed_query_strings_are_406() {
        let router = Router::new().get("/", root);
        let with = |query: &str| {
            router.handle(&Request {
                method: "GET".into(),
                path: "/".into(),
                query: query.into(),
                ..Default::default()
            })
        };
        assert_eq!(body(with("limit=5&filter=a+b%20c")), "\"root\"");
        for (query, named) in [
            ("limit=%zz", "limit"),
            ("limit=1&filter=%+1", "filter"),
            ("x=%", "x"),
            ("%zz=1", "%zz"),
        ] {
            let err = with(query).unwrap_err();
            assert_eq!(
                (err.status, err.message),
                (406, format!("Parameter '{named}' is malformed.")),
                "{query}"
            );
        }
        // An unknown path stays a 404 whatever its query.
        let err = router
            .handle(&Request {
                method: "GET".into(),
                path: "/nope".into(),
                query: "x=%zz".into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err.status, 404);
    }
}
