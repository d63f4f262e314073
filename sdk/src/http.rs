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

    /// The first query parameter called `name`, percent-decoded (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key, true).as_deref() == Some(name))
                .then(|| percent_decode(value, true))
                .flatten()
        })
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

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`); `None`
/// when an escape is broken or the result is not UTF-8.
pub(crate) fn percent_decode(input: &str, plus_is_space: bool) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = input.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
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
