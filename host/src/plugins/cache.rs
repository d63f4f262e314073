//! The compiled-code cache: a restart loads plugins' machine code from disk
//! instead of compiling them again.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiles `wasm`, or loads it from `cache_dir` when the same bytes were
/// compiled before by a compatible engine.
///
/// The key is the component's SHA-256 plus a hash of the engine's
/// compilation settings, so a changed plugin or an upgraded agent misses the
/// cache instead of loading stale code. Files are written atomically.
pub fn load_or_compile(
    engine: &Engine,
    cache_dir: &Path,
    name: &str,
    wasm: &[u8],
    sha256: &[u8; 32],
) -> Result<Component> {
    let path = cache_path(engine, cache_dir, name, sha256);
    if path.exists() {
        // SAFETY: the file was written by `Component::serialize` of an engine
        // with the same settings (the key says so) into the operator's own
        // cache directory; wasmtime re-checks version and settings on load.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                tracing::debug!(plugin = name, path = %path.display(), "loaded compiled plugin from cache");
                return Ok(component);
            }
            Err(e) => {
                tracing::warn!(plugin = name, path = %path.display(), "ignoring unusable cache entry: {e}")
            }
        }
    }
    let started = std::time::Instant::now();
    let component = Component::new(engine, wasm)
        .map_err(|e| {
            let e = anyhow::Error::from(e);
            match build_mistake(&format!("{e:#}")) {
                Some(hint) => e.context(hint),
                None => e,
            }
        })
        .with_context(|| format!("plugin '{name}' is not a valid WebAssembly component"))?;
    tracing::info!(
        plugin = name,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compiled plugin"
    );
    if let Err(e) = store(&component, &path) {
        tracing::warn!(plugin = name, path = %path.display(), "cannot write compiled-code cache: {e:#}");
    }
    Ok(component)
}

/// Whether the component of digest `sha256` is compiled in `cache_dir`
/// for `engine` already.
pub fn is_cached(engine: &Engine, cache_dir: &Path, name: &str, sha256: &[u8; 32]) -> bool {
    cache_path(engine, cache_dir, name, sha256).exists()
}

/// A component's SHA-256: the cache key's first half, and how a reload
/// tells a replaced plugin.
pub fn digest(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

/// What a toolchain did when a component does not compile for the reason
/// `error` gives, and the flag that avoids it.
fn build_mistake(error: &str) -> Option<&'static str> {
    error
        .contains("requires the component model async feature")
        .then_some(
            "it uses the component model's async ABI, which the agent does not run: build it \
             synchronous (componentize-qjs --sync; jco componentize --backend qjs \
             --backend-qjs-disable-async)",
        )
}

fn cache_path(engine: &Engine, cache_dir: &Path, name: &str, sha256: &[u8; 32]) -> PathBuf {
    let digest = hex::encode(sha256);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    cache_dir.join(format!(
        "{name}-{}-{:016x}.cwasm",
        &digest[..32],
        hasher.finish()
    ))
}

fn store(component: &Component, path: &Path) -> Result<()> {
    let dir = path.parent().context("cache path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn async_abi_components_say_which_flag_to_use() {
        let hint = super::build_mistake(
            "failed to parse WebAssembly module: `task.cancel` requires the component model async feature",
        )
        .unwrap();
        assert!(hint.contains("--sync"), "{hint}");
        assert!(super::build_mistake("bad magic number").is_none());
    }
}
