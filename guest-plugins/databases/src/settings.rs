//! The body of `PATCH`/`PUT /api/databases/:id`: `{"database":
//! {"periodic_backups_enabled": bool, "periodic_backups_scheduled_at": hour
//! or [hours]}}`, checked field by field. What is wrong comes back as the
//! reference's `{"errors": {"<field>": ["<message>"]}}` (422).

use serde_json::{Map, Value};

/// The settings a request changes; `None` leaves one as it is.
#[derive(Debug, Default, PartialEq)]
pub struct Change {
    pub enabled: Option<bool>,
    pub hours: Option<Vec<u8>>,
}

pub type Errors = Map<String, Value>;

fn add(errors: &mut Errors, field: &str, message: &str) {
    let entry = errors
        .entry(field.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = entry {
        list.push(Value::String(message.to_string()));
    }
}

fn hour(value: &Value) -> Option<u8> {
    value
        .as_u64()
        .and_then(|h| u8::try_from(h).ok())
        .filter(|h| *h < 24)
}

pub fn parse(body: &Value) -> Result<Change, Errors> {
    let mut errors = Errors::new();
    let Some(database) = body.get("database") else {
        add(&mut errors, "database", "is required");
        return Err(errors);
    };
    let Some(fields) = database.as_object() else {
        add(&mut errors, "database", "must be an object");
        return Err(errors);
    };
    let mut change = Change::default();
    for (field, value) in fields {
        match field.as_str() {
            "periodic_backups_enabled" => match value.as_bool() {
                Some(enabled) => change.enabled = Some(enabled),
                None => add(&mut errors, field, "must be a boolean"),
            },
            "periodic_backups_scheduled_at" => {
                let hours = match value {
                    Value::Array(list) => list.iter().map(hour).collect::<Option<Vec<u8>>>(),
                    single => hour(single).map(|h| vec![h]),
                };
                match hours {
                    Some(mut hours) => {
                        hours.sort_unstable();
                        hours.dedup();
                        change.hours = Some(hours);
                    }
                    None => add(
                        &mut errors,
                        field,
                        "must be an hour of the day (0 to 23, UTC) or a list of them",
                    ),
                }
            }
            _ => add(&mut errors, field, "is not a setting that can be changed"),
        }
    }
    if errors.is_empty() {
        Ok(change)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_and_their_errors() {
        assert_eq!(
            parse(
                &json!({"database": {"periodic_backups_enabled": true, "periodic_backups_scheduled_at": 3}})
            ),
            Ok(Change {
                enabled: Some(true),
                hours: Some(vec![3])
            })
        );
        assert_eq!(
            parse(&json!({"database": {"periodic_backups_scheduled_at": [23, 0, 23]}})),
            Ok(Change {
                enabled: None,
                hours: Some(vec![0, 23])
            })
        );
        let errors = parse(&json!({"database": {"periodic_backups_enabled": "yes", "periodic_backups_scheduled_at": 24, "plan": "x"}})).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors["plan"][0]
                .as_str()
                .unwrap()
                .contains("not a setting")
        );
        assert!(
            parse(&json!({"nothing": 1}))
                .unwrap_err()
                .contains_key("database")
        );
        assert!(
            parse(&json!({"database": [1]}))
                .unwrap_err()
                .contains_key("database")
        );
        assert!(parse(&json!({"database": {"periodic_backups_scheduled_at": [1, -1]}})).is_err());
    }
}
