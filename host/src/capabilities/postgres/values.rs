//! Conversion between PostgreSQL's binary wire values and the WIT `value`.
//!
//! Parameters accept any declared type they can be encoded as (an `int` for
//! int2/int4/int8/oid/float, a `text` for text-like types and json); results
//! decode the types listed in `wit/postgres.wit`. Anything else is an error
//! that tells the plugin author to cast in SQL, never a silent guess.

use crate::wit::postgres::Value;
use bytes::{BufMut, BytesMut};
use postgres_types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use std::error::Error;

type BoxError = Box<dyn Error + Sync + Send>;

/// A parameter bound to a statement.
#[derive(Debug)]
pub struct Param<'a>(pub &'a Value);

fn is_text_like(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    ) || matches!(ty.kind(), Kind::Enum(_))
}

fn mismatch(value: &str, ty: &Type) -> BoxError {
    format!("a {value} parameter cannot be sent as {ty}; cast the placeholder in SQL (e.g. $1::text::{ty})").into()
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Boolean(b) if *ty == Type::BOOL => b.to_sql(ty, out),
            Value::Boolean(_) => Err(mismatch("boolean", ty)),
            Value::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT8 => i.to_sql(ty, out),
                Type::OID => u32::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ if is_text_like(ty) => i.to_string().as_str().to_sql(&Type::TEXT, out),
                _ => Err(mismatch("int", ty)),
            },
            Value::Float(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::FLOAT8 => f.to_sql(ty, out),
                _ => Err(mismatch("float", ty)),
            },
            Value::Text(s) | Value::Numeric(s) | Value::Json(s) => match *ty {
                _ if is_text_like(ty) => s.as_str().to_sql(&Type::TEXT, out),
                Type::JSON | Type::JSONB => {
                    if *ty == Type::JSONB {
                        // jsonb's binary form is a version byte before the text.
                        out.put_u8(1);
                    }
                    out.put_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                _ => Err(mismatch("text", ty)),
            },
            Value::Bytes(b) if *ty == Type::BYTEA => b.as_slice().to_sql(ty, out),
            Value::Bytes(_) => Err(mismatch("bytes", ty)),
            Value::TextArray(items) => match *ty {
                Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::NAME_ARRAY => {
                    let refs: Vec<&str> = items.iter().map(String::as_str).collect();
                    refs.to_sql(ty, out)
                }
                _ => Err(mismatch("text-array", ty)),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        // The declared type is checked in `to_sql`, where the error can say what to do.
        true
    }

    to_sql_checked!();
}

/// A result column value.
pub struct Cell(pub Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let value = match *ty {
            Type::BOOL => Value::Boolean(bool::from_sql(ty, raw)?),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::OID | Type::XID | Type::REGCLASS | Type::REGPROC | Type::REGTYPE | Type::CID => {
                Value::Int(u32::from_be_bytes(four_bytes(raw)?).into())
            }
            Type::FLOAT4 => Value::Float(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Float(f64::from_sql(ty, raw)?),
            Type::NUMERIC => Value::Numeric(decode_numeric(raw)?),
            Type::CHAR => Value::Text(char::from(*raw.first().unwrap_or(&b' ')).to_string()),
            Type::JSON => Value::Json(std::str::from_utf8(raw)?.to_string()),
            Type::JSONB => {
                Value::Json(std::str::from_utf8(raw.get(1..).unwrap_or_default())?.to_string())
            }
            Type::TIMESTAMPTZ => Value::Text(
                chrono::DateTime::<chrono::Utc>::from_sql(ty, raw)?
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string(),
            ),
            Type::TIMESTAMP => Value::Text(
                chrono::NaiveDateTime::from_sql(ty, raw)?
                    .format("%Y-%m-%dT%H:%M:%S%.6f")
                    .to_string(),
            ),
            Type::DATE => Value::Text(
                chrono::NaiveDate::from_sql(ty, raw)?
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
            Type::TIME => Value::Text(
                chrono::NaiveTime::from_sql(ty, raw)?
                    .format("%H:%M:%S%.6f")
                    .to_string(),
            ),
            Type::INTERVAL => Value::Float(decode_interval_seconds(raw)?),
            Type::BYTEA => Value::Bytes(raw.to_vec()),
            Type::INET | Type::CIDR => Value::Text(decode_inet(raw, *ty == Type::CIDR)?),
            Type::TEXT_ARRAY | Type::NAME_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => {
                Value::TextArray(
                    Vec::<Option<String>>::from_sql(ty, raw)?
                        .into_iter()
                        .map(Option::unwrap_or_default)
                        .collect(),
                )
            }
            _ if is_text_like(ty) => Value::Text(String::from_utf8_lossy(raw).into_owned()),
            _ => {
                return Err(format!(
                    "the host does not convert type {ty}; cast the column in SQL (e.g. col::text)"
                )
                .into());
            }
        };
        Ok(Cell(value))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn four_bytes(raw: &[u8]) -> Result<[u8; 4], BoxError> {
    raw.try_into().map_err(|_| "expected 4 bytes".into())
}

fn be_i16(raw: &[u8], at: usize) -> Result<i16, BoxError> {
    raw.get(at..at + 2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "truncated numeric".into())
}

/// Renders PostgreSQL's binary numeric (base-10000 digits) as its exact decimal text.
fn decode_numeric(raw: &[u8]) -> Result<String, BoxError> {
    let ndigits = be_i16(raw, 0)?.max(0) as usize;
    let weight = be_i16(raw, 2)? as i32;
    let sign = be_i16(raw, 4)? as u16;
    let dscale = be_i16(raw, 6)?.max(0) as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| be_i16(raw, 8 + 2 * i))
        .collect::<Result<Vec<_>, _>>()?;
    let digit = |i: i32| -> i16 {
        if i >= 0 {
            digits.get(i as usize).copied().unwrap_or(0)
        } else {
            0
        }
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            let d = digit(i);
            if i == 0 {
                out.push_str(&d.to_string());
            } else {
                out.push_str(&format!("{d:04}"));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut fraction = String::new();
        let mut i = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        fraction.truncate(dscale);
        out.push_str(&fraction);
    }
    Ok(out)
}

/// Months count as 30 days, as PostgreSQL's own `EXTRACT(EPOCH FROM interval)` does.
fn decode_interval_seconds(raw: &[u8]) -> Result<f64, BoxError> {
    if raw.len() != 16 {
        return Err("malformed interval".into());
    }
    let micros = i64::from_be_bytes(raw[0..8].try_into()?);
    let days = i32::from_be_bytes(raw[8..12].try_into()?);
    let months = i32::from_be_bytes(raw[12..16].try_into()?);
    Ok(micros as f64 / 1e6 + f64::from(days) * 86_400.0 + f64::from(months) * 30.0 * 86_400.0)
}

fn decode_inet(raw: &[u8], is_cidr: bool) -> Result<String, BoxError> {
    let [family, bits, _, len, addr @ ..] = raw else {
        return Err("malformed inet".into());
    };
    let (text, max_bits) = match (family, *len as usize, addr.len()) {
        (2, 4, 4) => (
            std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string(),
            32,
        ),
        (3, 16, 16) => {
            let octets: [u8; 16] = addr.try_into()?;
            (std::net::Ipv6Addr::from(octets).to_string(), 128)
        }
        _ => return Err("malformed inet".into()),
    };
    Ok(if is_cidr || *bits != max_bits {
        format!("{text}/{bits}")
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut raw = Vec::new();
        for v in [ndigits, weight, sign as i16, dscale] {
            raw.extend_from_slice(&v.to_be_bytes());
        }
        for d in digits {
            raw.extend_from_slice(&d.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics() {
        // 12345.678 = [1, 2345, 6780] weight 1, dscale 3
        assert_eq!(
            decode_numeric(&numeric(3, 1, 0, 3, &[1, 2345, 6780])).unwrap(),
            "12345.678"
        );
        // -0.05 = [500] weight -1, dscale 2
        assert_eq!(
            decode_numeric(&numeric(1, -1, 0x4000, 2, &[500])).unwrap(),
            "-0.05"
        );
        // 0 with dscale 2
        assert_eq!(decode_numeric(&numeric(0, 0, 0, 2, &[])).unwrap(), "0.00");
        // 10000 = [1] weight 1
        assert_eq!(decode_numeric(&numeric(1, 1, 0, 0, &[1])).unwrap(), "10000");
        assert_eq!(
            decode_numeric(&numeric(0, 0, 0xC000, 0, &[])).unwrap(),
            "NaN"
        );
    }

    #[test]
    fn inet() {
        assert_eq!(
            decode_inet(&[2, 32, 0, 4, 127, 0, 0, 1], false).unwrap(),
            "127.0.0.1"
        );
        assert_eq!(
            decode_inet(&[2, 24, 1, 4, 10, 0, 0, 0], true).unwrap(),
            "10.0.0.0/24"
        );
    }
}
