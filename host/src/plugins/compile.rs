//! Compiling plugins ahead of a start: `dbagent compile --config FILE`
//! fills the compiled-code cache (packaging and CI run it), and a start
//! that finds the cache cold runs it as a child process, so that the
//! compiler's memory (hundreds of MiB for large guests) leaves with the
//! child instead of staying in the agent.

use super::{cache, loader};
use crate::config::Config;
use anyhow::{Context, Result};
use std::path::Path;

/// What `compile` did.
pub struct Compiled {
    pub compiled: Vec<String>,
    pub cached: usize,
}

/// Compiles every enabled plugin the cache lacks, several at once, with
/// the engine the agent itself builds for `config`. A plugin that cannot
/// be read or compiled is an error, after the others are compiled (a
/// reload compiling ahead still gets them).
pub fn compile_all(config: &Config) -> Result<Compiled> {
    let (sources, bad) = loader::gather(config)?;
    let max_memory = loader::max_memory_bytes(config, &sources)?;
    let engine = super::runtime::engine(config.runtime.max_instances, max_memory)?;
    let cache_dir = &config.runtime.cache_dir;
    let missing: Vec<&loader::Source> = sources
        .iter()
        .filter(|s| !cache::is_cached(&engine, cache_dir, &s.manifest.name, &s.sha256))
        .collect();
    let cached = sources.len() - missing.len();
    // Cranelift parallelises within a component too: a few at a time.
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let mut compiled = Vec::new();
    // Every plugin that can be compiled is, whatever fails beside it.
    let mut failed = Vec::new();
    for chunk in missing.chunks(workers) {
        let results: Vec<Result<String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|source| {
                    let engine = &engine;
                    scope.spawn(move || {
                        cache::load_or_compile(
                            engine,
                            cache_dir,
                            &source.manifest.name,
                            &source.wasm,
                            &source.sha256,
                        )
                        .with_context(|| source.origin.clone())
                        .map(|_| source.manifest.name.clone())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a compiler thread panicked")))
                })
                .collect()
        });
        for result in results {
            match result {
                Ok(name) => compiled.push(name),
                Err(e) => failed.push(format!("{e:#}")),
            }
        }
    }
    failed.extend(bad.into_iter().map(|bad| bad.reason));
    if !failed.is_empty() {
        anyhow::bail!("{}", failed.join("; "));
    }
    Ok(Compiled { compiled, cached })
}

/// At start-up and reload: when plugins miss the cache, compiles them in a
/// child `dbagent compile` (its memory goes with it). Any trouble with the
/// child is logged; the loader then compiles what is still missing itself.
pub fn ahead_in_child(config: &Config, engine: &wasmtime::Engine, sources: &[loader::Source]) {
    let missing = sources
        .iter()
        .filter(|s| {
            !cache::is_cached(
                engine,
                &config.runtime.cache_dir,
                &s.manifest.name,
                &s.sha256,
            )
        })
        .count();
    if missing == 0 {
        return;
    }
    let started = std::time::Instant::now();
    tracing::info!(
        plugins = missing,
        "compiling plugins ahead in a child process"
    );
    match run_child(&config.file) {
        Ok(()) => tracing::info!(
            plugins = missing,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plugins compiled"
        ),
        Err(e) => tracing::warn!("compiling in a child process failed, compiling here: {e:#}"),
    }
}

fn run_child(config_file: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the agent's own program")?;
    let output = std::process::Command::new(&exe)
        .arg("compile")
        .arg("--config")
        .arg(config_file)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} compile", exe.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} compile failed ({}): {}",
            exe.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
    }
}
