//! The history of data sets in the plugin's store: one key per set (see
//! [`HISTORY_PREFIX`]), so a collection writes one small value and deletes
//! the oldest ones instead of rewriting the whole history each time.

use crate::figures::{HISTORY_PREFIX, epoch_seconds, history_key, keys_to_prune, keys_to_show};
use crate::metrics::{DataSet, now_micros};
use dbagent_sdk::{Error, store};

/// Where the newest set is kept a second time, so that `GET /dashboard`
/// (polled by every open dashboard page) reads one value instead of
/// listing the history. Outside [`HISTORY_PREFIX`], so never pruned.
const LAST_KEY: &str = "last";

/// Stores `set` as the newest and keeps the newest `keep` sets.
pub fn append(set: &DataSet, keep: u64) -> Result<(), Error> {
    let keys = store::list(HISTORY_PREFIX);
    let key = history_key(now_micros(), keys.last().map(String::as_str));
    store::put_json(&key, set)?;
    store::put_json(LAST_KEY, set)?;
    // The new key sorts after every existing one.
    let keep = usize::try_from(keep)
        .unwrap_or(usize::MAX)
        .saturating_sub(1);
    for old in keys_to_prune(&keys, keep) {
        store::delete(old)?;
    }
    Ok(())
}

/// The newest `keep` sets, oldest first. A value that does not read back
/// as a set (written by another version) is left out rather than failing
/// the whole history.
pub fn read(keep: u64) -> Vec<DataSet> {
    let keys = store::list(HISTORY_PREFIX);
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
    keys_to_show(&keys, keep)
        .iter()
        .filter_map(|key| stored(key))
        .collect()
}

/// The newest set as it was stored (JSON), if one was kept.
pub fn last_raw() -> Option<Vec<u8>> {
    store::get(LAST_KEY)
}

/// The newest set, if any was collected.
pub fn last() -> Option<DataSet> {
    if let Some(set) = store::get_json::<DataSet>(LAST_KEY) {
        return Some(set);
    }
    // Stored by a version that kept no copy of the newest set.
    store::list(HISTORY_PREFIX)
        .iter()
        .rev()
        .find_map(|key| stored(key))
}

/// The set stored under `key`; one stored before sets had a `timestamp`
/// gets its collection time, which the key holds.
fn stored(key: &str) -> Option<DataSet> {
    let mut set: DataSet = store::get_json(key)?;
    if set.timestamp == 0.0
        && let Some(micros) = key
            .strip_prefix(HISTORY_PREFIX)
            .and_then(|t| t.parse::<u64>().ok())
    {
        set.timestamp = epoch_seconds(micros);
    }
    Some(set)
}
