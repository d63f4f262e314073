//! Plugins' durable key-value state, scoped by plugin name.

use super::db::Store;
use rusqlite::{OptionalExtension as _, params};

impl Store {
    pub fn kv_get(&self, plugin: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT value FROM kv WHERE plugin = ?1 AND key = ?2",
                params![plugin, key],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub fn kv_put(&self, plugin: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        self.conn().execute(
            "INSERT INTO kv (plugin, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
            params![plugin, key, value],
        )?;
        Ok(())
    }

    /// False when there was no such key.
    pub fn kv_delete(&self, plugin: &str, key: &str) -> anyhow::Result<bool> {
        let deleted = self.conn().execute(
            "DELETE FROM kv WHERE plugin = ?1 AND key = ?2",
            params![plugin, key],
        )?;
        Ok(deleted > 0)
    }

    /// A plugin's keys that start with `prefix`, in byte order.
    pub fn kv_list(&self, plugin: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
        let conn = self.conn();
        // Keys with a common prefix are contiguous in the primary key's (byte) order, so start
        // there and stop at the first key past them instead of scanning the plugin's keys.
        let mut stmt =
            conn.prepare_cached("SELECT key FROM kv WHERE plugin = ?1 AND key >= ?2 ORDER BY key")?;
        let mut rows = stmt.query(params![plugin, prefix])?;
        let mut keys = Vec::new();
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            if !key.starts_with(prefix) {
                break;
            }
            keys.push(key);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_is_per_plugin_and_lists_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.kv_get("a", "k").unwrap(), None);
        store.kv_put("a", "k", b"1").unwrap();
        store.kv_put("a", "k", b"2").unwrap();
        store.kv_put("b", "k", b"other plugin").unwrap();
        assert_eq!(store.kv_get("a", "k").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(
            store.kv_get("b", "k").unwrap().as_deref(),
            Some(&b"other plugin"[..])
        );

        for key in ["h/2", "h/1", "h0", "g", "h/10", "i"] {
            store.kv_put("a", key, b"").unwrap();
        }
        store.kv_put("b", "h/x", b"").unwrap();
        assert_eq!(store.kv_list("a", "h/").unwrap(), ["h/1", "h/10", "h/2"]);
        assert_eq!(store.kv_list("a", "").unwrap().len(), 7);
        assert!(store.kv_list("a", "zz").unwrap().is_empty());

        assert!(store.kv_delete("a", "k").unwrap());
        assert!(!store.kv_delete("a", "k").unwrap());
        assert_eq!(store.kv_get("a", "k").unwrap(), None);
        assert_eq!(
            store.kv_get("b", "k").unwrap().as_deref(),
            Some(&b"other plugin"[..])
        );
    }
}
