use crate::Error;
use crate::bindings::dbagent::api::http_types;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The request as the plugin sees it (see the `http-types` WIT interface).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub prefix: String,
    pub path: String,
    pub query: String,
    /// (lower-case name, value) pairs.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub user: Option<String>,
}

impl Request {
    pub(crate) fn from_raw(raw: http_types::Request) -> Self {
        Request {
            method: raw.method,
            prefix: raw.prefix,
            path: raw.path,
            query: raw.query,
            headers: raw.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: raw.body,
            user: raw.user,
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter called `name`, percent-decoded (`+` is a
    /// space); `None` when absent or malformed ([`crate::Router`] answers
    /// 406 for a query string with a malformed escape before any handler
    /// runs, see [`Request::check_query`]).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key, true).as_deref() == Some(name))
                .then(|| percent_decode(value, true))
                .flatten()
        })
    }

    /// 406 `Parameter 'NAME' is malformed.` naming the first query parameter
    /// whose name or value holds a malformed percent-escape.
    pub fn check_query(&self) -> Result<(), Error> {
        query_pairs(&self.query)
            .map(|_| ())
            .map_err(|name| Error::malformed(&name))
    }

    /// The integer query parameter `name` within `range`, `default` when
    /// absent; anything else is temBoard's 406 `Parameter 'NAME' is malformed.`
    pub fn int_param(
        &self,
        name: &str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, Error> {
        match self.query_param(name) {
            None => Ok(default),
            Some(text) => match text.parse::<i64>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(Error::malformed(name)),
            },
        }
    }

    /// The body as an HTML form (`application/x-www-form-urlencoded`, what
    /// `curl -d 'a=1&b=2'` sends): its `(name, value)` pairs, decoded; a
    /// body that is not UTF-8 or holds a malformed escape is a 400.
    pub fn form(&self) -> Result<Vec<(String, String)>, Error> {
        let text = std::str::from_utf8(&self.body)
            .map_err(|_| Error::bad_request("the form body is not UTF-8"))?;
        query_pairs(text.trim())
            .map_err(|name| Error::bad_request(format!("form field '{name}' is malformed")))
    }

    /// The body parsed as JSON; an empty or invalid body is a 400
    /// `{"error": "Invalid json format"}`, temBoard's wording.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.json_or(Error::bad_request("Invalid json format"))
    }

    /// The body parsed as JSON, or `error` when it is empty, invalid or of
    /// another shape (e.g. temBoard's 406 `Parameter 'pids' is malformed.`).
    pub fn json_or<T: DeserializeOwned>(&self, error: Error) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|_| error)
    }
}

/// The response a handler returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response with `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Response {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            },
            Err(e) => Response {
                status: 500,
                headers: vec![("content-type".into(), "application/json".into())],
                body: format!(
                    r#"{{"error": "cannot encode JSON: {}"}}"#,
                    e.to_string().replace('"', "'")
                )
                .into_bytes(),
            },
        }
    }

    /// A 200 JSON response.
    pub fn ok<T: Serialize + ?Sized>(value: &T) -> Self {
        Self::json(200, value)
    }

    /// A response whose body is JSON already (read from the store, or built
    /// by PostgreSQL), passed through without being parsed and written again.
    pub fn json_bytes(status: u16, body: Vec<u8>) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    }

    pub(crate) fn into_raw(self) -> http_types::Response {
        http_types::Response {
            status: self.status,
            headers: self
                .headers
                .into_iter()
                .map(|(name, value)| http_types::Header { name, value })
                .collect(),
            body: self.body,
        }
    }
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`), the
/// one decoder of paths and query strings. `None` when an escape is
/// malformed (`%zz`, `%+1`, a lone `%`) or the result is not UTF-8: the
/// `percent-encoding` crate leaves such escapes as they are, so they are
/// refused here first rather than taken literally.
pub(crate) fn percent_decode(input: &str, plus_is_space: bool) -> Option<String> {
    let bytes = input.as_bytes();
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'%') {
        let at = i + offset;
        let hex = bytes.get(at + 1..at + 3)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        i = at + 3;
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .ok()
            .map(|decoded| decoded.into_owned())
    };
    if plus_is_space && input.contains('+') {
        decode(&input.replace('+', " "))
    } else {
        decode(input)
    }
}

/// The `(name, value)` pairs of a query string, decoded; `Err` with the
/// (raw) name of the first pair that does not decode.
pub(crate) fn query_pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(key, true).ok_or_else(|| key.to_string())?;
            let value = percent_decode(value, true).ok_or_else(|| name.clone())?;
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        let req = Request {
            query: "limit=10&filter=a%20b+c&empty=&bad=%zz".into(),
            ..Default::default()
        };
        assert_eq!(req.query_param("limit").as_deref(), Some("10"));
        assert_eq!(req.query_param("filter").as_deref(), Some("a b c"));
        assert_eq!(req.query_param("empty").as_deref(), Some(""));
        assert_eq!(req.query_param("bad"), None);
        assert_eq!(req.query_param("missing"), None);
        assert_eq!(
            req.check_query().unwrap_err().message,
            "Parameter 'bad' is malformed."
        );
        let good = Request {
            query: "limit=10&filter=a%20b+c&empty=&flag".into(),
            ..Default::default()
        };
        assert_eq!(good.check_query(), Ok(()));
        assert_eq!(good.query_param("flag").as_deref(), Some(""));
    }

    #[test]
    fn strict_percent_decoding() {
        assert_eq!(percent_decode("a%20b", false).as_deref(), Some("a b"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_decode("a+b%2B", true).as_deref(), Some("a b+"));
        assert_eq!(
            percent_decode("%C3%A9t%C3%A9", false).as_deref(),
            Some("été")
        );
        assert_eq!(percent_decode("%2f%2F", false).as_deref(), Some("//"));
        assert_eq!(percent_decode("%00", false).as_deref(), Some("\0"));
        for bad in [
            "%zz", "%+1", "%-1", "%", "a%", "a%2", "%%", "% 1", "%C3", "%FF",
        ] {
            assert_eq!(percent_decode(bad, false), None, "{bad}");
            assert_eq!(percent_decode(bad, true), None, "{bad}");
        }
        assert_eq!(
            query_pairs("a=1&%zz=2"),
            Err("%zz".to_string()),
            "an undecodable name is named as sent"
        );
        assert_eq!(query_pairs("a=%+1"), Err("a".to_string()));
    }

    #[test]
    fn int_params() {
        let with = |q: &str| Request {
            query: q.into(),
            ..Default::default()
        };
        assert_eq!(with("").int_param("limit", 300, 1..=10).unwrap(), 300);
        assert_eq!(
            with("limit=10").int_param("limit", 300, 1..=10).unwrap(),
            10
        );
        for bad in ["limit=0", "limit=11", "limit=x", "limit="] {
            let err = with(bad).int_param("limit", 300, 1..=10).unwrap_err();
            assert_eq!(
                (err.status, err.message.as_str()),
                (406, "Parameter 'limit' is malformed.")
            );
        }
    }

    #[test]
    fn invalid_json_is_400() {
        let req = Request {
            body: b"{nope".to_vec(),
            ..Default::default()
        };
        let err = req.json::<serde_json::Value>().unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.message, "Invalid json format");
    }
}
