//! Counters turned into deltas between two collections, as temBoard's
//! probes do: each row keeps its raw values under `current`, gains the
//! differences under the counters' names and `measure_interval` (seconds),
//! once a previous measure exists and no counter went backwards (a reset).
//! The previous measures live in the plugin's store, so a restart does not
//! lose them.

use dbagent_sdk::store;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

const PREFIX: &str = "delta/";

#[derive(Serialize, Deserialize)]
struct Measure {
    /// Unix time in seconds.
    time: f64,
    values: Map<String, Value>,
}

/// The deltas of one collection, measured at `now` (Unix seconds).
pub struct Deltas {
    now: f64,
}

impl Deltas {
    pub fn new(now: f64) -> Deltas {
        Deltas { now }
    }

    /// The fields to add to a row for the counters `current` under `key`.
    pub fn apply(&mut self, key: &str, current: Map<String, Value>) -> Map<String, Value> {
        let store_key = format!("{PREFIX}{key}");
        let previous: Option<Measure> = store::get_json(&store_key);
        let mut out = Map::new();
        out.insert("current".into(), Value::Object(current.clone()));
        if let Some(previous) = previous {
            let differences: Option<Vec<(String, f64)>> = current
                .iter()
                .map(|(k, v)| {
                    let now = v.as_f64()?;
                    let then = previous.values.get(k)?.as_f64()?;
                    (now >= then).then(|| (k.clone(), now - then))
                })
                .collect();
            if let Some(differences) = differences {
                out.insert(
                    "measure_interval".into(),
                    json!((self.now - previous.time).max(0.0)),
                );
                for (k, d) in differences {
                    // Integers stay integers.
                    let value = if d.fract() == 0.0 && d.abs() < 9.0e15 {
                        json!(d as i64)
                    } else {
                        json!(d)
                    };
                    out.insert(k, value);
                }
            }
        }
        // A failed write only costs the next delta.
        let _ = store::put_json(
            &store_key,
            &Measure {
                time: self.now,
                values: current,
            },
        );
        out
    }
}
