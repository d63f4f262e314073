//! Route prefixes → plugins. Exact match beats prefix; the longest prefix wins.

use anyhow::{Result, bail};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct RouteTable {
    /// prefix → (plugin index, plugin name)
    prefixes: HashMap<String, (usize, String)>,
    /// Paths the host serves itself; no plugin may claim them.
    native: Vec<String>,
}

/// The plugin a path resolved to, the prefix that matched and the rest of the path.
#[derive(Debug, PartialEq)]
pub struct Match<'a> {
    pub plugin: usize,
    pub prefix: &'a str,
    pub rest: &'a str,
}

impl RouteTable {
    /// A table in which no plugin may claim one of `native` paths.
    pub fn new(native: &[&str]) -> RouteTable {
        RouteTable {
            prefixes: HashMap::new(),
            native: native.iter().map(|p| p.to_string()).collect(),
        }
    }

    pub fn add(&mut self, prefix: &str, plugin: usize, name: &str) -> Result<()> {
        if self.native.iter().any(|p| p == prefix) {
            bail!("plugin '{name}' claims route prefix '{prefix}', which the host serves itself");
        }
        if let Some((_, other)) = self.prefixes.get(prefix) {
            bail!("route prefix '{prefix}' is claimed by both plugins '{other}' and '{name}'");
        }
        self.prefixes
            .insert(prefix.to_string(), (plugin, name.to_string()));
        Ok(())
    }

    /// Adds every prefix of one plugin, or none of them.
    pub fn add_all(&mut self, prefixes: &[String], plugin: usize, name: &str) -> Result<()> {
        for (i, prefix) in prefixes.iter().enumerate() {
            if let Err(e) = self.add(prefix, plugin, name) {
                for added in &prefixes[..i] {
                    self.prefixes.remove(added);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Tries the whole path, then drops one segment at a time from the end,
    /// so the first hit is the longest matching prefix.
    pub fn resolve<'a>(&self, path: &'a str) -> Option<Match<'a>> {
        let mut candidate = path.trim_end_matches('/');
        loop {
            if let Some((plugin, _)) = self.prefixes.get(candidate) {
                return Some(Match {
                    plugin: *plugin,
                    prefix: candidate,
                    rest: &path[candidate.len()..],
                });
            }
            let cut = candidate.rfind('/')?;
            if cut == 0 {
                return None;
            }
            candidate = &candidate[..cut];
        }
    }

    pub fn len(&self) -> usize {
        self.prefixes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::default();
        t.add("/activity", 0, "activity").unwrap();
        t.add("/activity/special", 1, "special").unwrap();
        t.add("/maintenance", 2, "maintenance").unwrap();
        assert_eq!(
            t.resolve("/activity").map(|m| (m.plugin, m.rest)),
            Some((0, ""))
        );
        assert_eq!(
            t.resolve("/activity/").map(|m| (m.plugin, m.rest)),
            Some((0, "/"))
        );
        assert_eq!(
            t.resolve("/activity/waiting").map(|m| (m.plugin, m.rest)),
            Some((0, "/waiting"))
        );
        assert_eq!(
            t.resolve("/activity/special/x").map(|m| (m.plugin, m.rest)),
            Some((1, "/x"))
        );
        assert_eq!(t.resolve("/activityx"), None);
        assert_eq!(t.resolve("/nope"), None);
        assert_eq!(t.resolve("/"), None);
        assert_eq!(
            t.resolve("/maintenance/db/schema/s").map(|m| m.prefix),
            Some("/maintenance")
        );
    }

    #[test]
    fn duplicates_and_native_routes_are_refused() {
        let mut t = RouteTable::new(&["/ping"]);
        t.add("/activity", 0, "activity").unwrap();
        let err = t.add("/activity", 1, "dup").unwrap_err().to_string();
        assert!(err.contains("'activity'") && err.contains("'dup'"), "{err}");
        assert!(t.add("/ping", 2, "x").is_err());
    }
}
