//! Finds, checks and loads plugins at start-up: the bundled ones and the
//! drop-ins of `[plugins] dir`.

use super::cache;
use super::manifest::{Manifest, capability_of_import};
use super::registry;
use super::routes::RouteTable;
use super::runtime::{Plugin, PluginLimits, Runtime};
use super::state::InstanceState;
use crate::config::Config;
use anyhow::{Context, Result, bail};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::Linker;

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

/// A plugin before compilation.
pub struct Source {
    pub manifest: Manifest,
    pub wasm: Cow<'static, [u8]>,
    /// `wasm`'s digest, computed once: the cache key and the reload's
    /// "replaced" both use it.
    pub sha256: [u8; 32],
    /// Where it came from, for messages.
    pub origin: String,
    pub bundled: bool,
    /// Its OpenAPI fragment (`openapi.json` beside a bundled plugin's
    /// manifest, `NAME.openapi.json` beside a drop-in), if it ships one.
    pub openapi: Option<Cow<'static, str>>,
}

/// A drop-in that cannot be a plugin as it stands (no manifest, a name
/// that is taken, …): a start-up error, a refusal at a reload.
pub struct BadDropIn {
    /// The plugin name it would have had: its file's stem.
    pub name: String,
    pub origin: String,
    pub reason: String,
}

/// Every enabled plugin's manifest and bytes, with names checked unique;
/// any bad drop-in is an error.
pub fn collect(config: &Config) -> Result<Vec<Source>> {
    let (sources, bad) = gather(config)?;
    if let Some(bad) = bad.into_iter().next() {
        bail!("{}", bad.reason);
    }
    Ok(sources)
}

/// Every enabled plugin's manifest and bytes, and the drop-ins that cannot
/// be loaded with why. Only an unreadable plugin directory is an error.
pub fn gather(config: &Config) -> Result<(Vec<Source>, Vec<BadDropIn>)> {
    let mut sources = bundled()?;
    let mut bad = Vec::new();
    if let Some(dir) = &config.plugins_dir {
        for drop_in in drop_ins(dir)? {
            match drop_in {
                Ok(source) => match sources
                    .iter()
                    .find(|s| s.manifest.name == source.manifest.name)
                {
                    Some(other) => bad.push(BadDropIn {
                        name: source.manifest.name.clone(),
                        reason: format!(
                            "two plugins are named '{}': {} and {}",
                            source.manifest.name, other.origin, source.origin
                        ),
                        origin: source.origin,
                    }),
                    None => sources.push(source),
                },
                Err(e) => bad.push(e),
            }
        }
    }
    for name in config.plugin.keys() {
        if !sources.iter().any(|s| &s.manifest.name == name) {
            tracing::warn!(
                "{}: [plugin.{name}] names no installed plugin",
                config.file.display()
            );
        }
    }
    sources.retain(|s| {
        let enabled = config
            .plugin
            .get(&s.manifest.name)
            .and_then(|p| p.enabled)
            .unwrap_or(true);
        if !enabled {
            tracing::info!(plugin = %s.manifest.name, "plugin disabled by configuration");
        }
        enabled
    });
    Ok((sources, bad))
}

/// The plugins built into the binary.
pub fn bundled() -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    for (manifest_text, wasm, openapi) in bundled::BUNDLED {
        let manifest = Manifest::parse(manifest_text, "bundled plugin manifest")?;
        let origin = format!("bundled plugin '{}'", manifest.name);
        sources.push(Source {
            manifest,
            sha256: cache::digest(wasm),
            wasm: Cow::Borrowed(*wasm),
            origin,
            bundled: true,
            openapi: openapi.map(Cow::Borrowed),
        });
    }
    Ok(sources)
}

/// `NAME.wasm` files with their `NAME.toml` manifests, in name order; each
/// one read, or why it cannot be.
fn drop_ins(dir: &Path) -> Result<Vec<Result<Source, BadDropIn>>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read plugin directory {}", dir.display()))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|wasm_path| {
            drop_in(&wasm_path).map_err(|e| BadDropIn {
                name: wasm_path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                origin: wasm_path.display().to_string(),
                reason: format!("{e:#}"),
            })
        })
        .collect())
}

fn drop_in(wasm_path: &Path) -> Result<Source> {
    let manifest_path = wasm_path.with_extension("toml");
    let text = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "plugin {} has no readable manifest {}",
            wasm_path.display(),
            manifest_path.display()
        )
    })?;
    let manifest = Manifest::parse(&text, &manifest_path.display().to_string())?;
    let stem = wasm_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem != manifest.name {
        bail!(
            "{}: the manifest names plugin '{}' but the file is {}",
            manifest_path.display(),
            manifest.name,
            wasm_path.display()
        );
    }
    let wasm =
        std::fs::read(wasm_path).with_context(|| format!("cannot read {}", wasm_path.display()))?;
    let openapi_path = wasm_path.with_extension("openapi.json");
    let openapi = match std::fs::read_to_string(&openapi_path) {
        Ok(text) => Some(Cow::Owned(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => bail!("cannot read {}: {e}", openapi_path.display()),
    };
    Ok(Source {
        manifest,
        sha256: cache::digest(&wasm),
        wasm: Cow::Owned(wasm),
        origin: wasm_path.display().to_string(),
        bundled: false,
        openapi,
    })
}

/// The largest memory limit any plugin will get: the pool's slot size.
pub fn max_memory_bytes(config: &Config, sources: &[Source]) -> Result<usize> {
    let mut max = config.runtime.memory_bytes;
    for s in sources {
        max = max.max(limits(config, s)?.2);
    }
    Ok(max)
}

/// (request deadline, job deadline, memory limit): the operator's setting,
/// else the manifest's, else the default.
fn limits(
    config: &Config,
    source: &Source,
) -> Result<(std::time::Duration, std::time::Duration, usize)> {
    let settings = config.plugin.get(&source.manifest.name);
    let name = &source.manifest.name;
    let timeout = match settings
        .and_then(|s| s.timeout_secs)
        .or(source.manifest.limits.timeout_secs)
    {
        Some(secs) => crate::config::positive_secs(
            secs,
            &format!("timeout_secs of plugin '{name}'"),
            &config.file,
        )?,
        None => config.runtime.timeout,
    };
    let job_timeout = match settings
        .and_then(|s| s.job_timeout_secs)
        .or(source.manifest.limits.job_timeout_secs)
    {
        Some(secs) => crate::config::positive_secs(
            secs,
            &format!("job_timeout_secs of plugin '{name}'"),
            &config.file,
        )?,
        None => timeout,
    };
    let memory = match settings
        .and_then(|s| s.memory_mib)
        .or(source.manifest.limits.memory_mib)
    {
        Some(mib) => {
            crate::config::mib(mib, &format!("memory_mib of plugin '{name}'"), &config.file)?
        }
        None => config.runtime.memory_bytes,
    };
    Ok((timeout, job_timeout, memory))
}

/// Checks grants, compiles (or loads from cache), links, and routes every plugin.
pub fn load(
    runtime: &Runtime,
    config: &Config,
    sources: Vec<Source>,
    native_paths: &[&str],
) -> Result<(Vec<Arc<Plugin>>, RouteTable)> {
    let mut plugins = Vec::new();
    let mut routes = RouteTable::new(native_paths);
    for source in sources {
        let plugin = load_one(runtime, config, source)?;
        routes.add_all(&plugin.manifest.routes, plugins.len(), &plugin.name)?;
        plugins.push(Arc::new(plugin));
    }
    Ok((plugins, routes))
}

/// Checks one plugin's grants and limits, compiles it (or loads it from the
/// cache) and links it.
pub fn load_one(runtime: &Runtime, config: &Config, source: Source) -> Result<Plugin> {
    let (timeout, job_timeout, memory) = limits(config, &source)?;
    // Checked now, kept as text: the document is built from it at its
    // first request. A bundled plugin's fragment is checked by a unit test
    // instead: parsing all of them at every start would leave the heap
    // about 2 MB higher for nothing.
    if let Some(text) = &source.openapi
        && !source.bundled
    {
        super::fragment::Fragment::parse(text, &source.manifest)
            .with_context(|| format!("the OpenAPI fragment of {}", source.origin))?;
    }
    let openapi = source.openapi.clone();
    if memory > runtime.max_memory_bytes() {
        bail!(
            "plugin '{}' ({}) may use {} MiB of memory, more than the {} MiB the agent sized its instances for at start-up: restart the agent to load it",
            source.manifest.name,
            source.origin,
            memory >> 20,
            runtime.max_memory_bytes() >> 20
        );
    }
    let component = cache::load_or_compile(
        runtime.engine(),
        &config.runtime.cache_dir,
        &source.manifest.name,
        &source.wasm,
        &source.sha256,
    )
    .with_context(|| source.origin.clone())?;
    check_capabilities(runtime, config, &source, &component)?;
    let settings = config
        .plugin
        .get(&source.manifest.name)
        .and_then(|p| p.settings.as_ref())
        .map(serde_json::to_string)
        .transpose()
        .context("plugin settings are not representable as JSON")?
        .unwrap_or_else(|| "{}".to_string());
    let linker = linker_for(runtime, &source.manifest)?;
    let source_sha256 = source.sha256;
    let mut plugin = runtime.prepare(
        source.manifest,
        &component,
        &linker,
        PluginLimits {
            bundled: source.bundled,
            timeout,
            job_timeout,
            memory_bytes: memory,
            settings: Arc::from(settings),
            // The temBoard areas serve the managed instance.
            target: Arc::clone(
                runtime
                    .services()
                    .postgres
                    .target(crate::capabilities::postgres::MANAGED)
                    .context("no managed PostgreSQL target")?,
            ),
        },
    )?;
    plugin.wasm_sha256 = source_sha256;
    plugin.openapi = openapi;
    tracing::info!(
        plugin = %plugin.name,
        version = %plugin.manifest.version,
        routes = ?plugin.manifest.routes,
        bundled = plugin.bundled,
        "plugin loaded"
    );
    Ok(plugin)
}

/// A linker holding what every plugin gets and the capabilities `manifest`
/// declares (checked granted by then), and nothing else: an import beyond
/// them cannot be satisfied.
fn linker_for(runtime: &Runtime, manifest: &Manifest) -> Result<Linker<InstanceState>> {
    let mut linker = Linker::new(runtime.engine());
    registry::link_ungranted(&mut linker).map_err(anyhow::Error::from)?;
    for name in &manifest.capabilities {
        if let Some(capability) = registry::find(name) {
            (capability.link)(&mut linker).map_err(anyhow::Error::from)?;
        }
    }
    Ok(linker)
}

/// A plugin may import only capabilities its manifest declares, and every
/// declared capability must be granted: bundled plugins are granted their
/// manifest unless the operator says otherwise, drop-ins nothing by default.
/// What a toolchain did when a component imports `import` that the host
/// never provides, and the flag that avoids it.
fn build_mistake(import: &str) -> Option<&'static str> {
    if import.starts_with("wasi:http/") {
        Some(
            "the component was built with HTTP support. Plugins answer through dbagent:api/handler: \
             build with componentize-js --disable http fetch-event (jco componentize: \
             --disable http --disable fetch-event), or against a world that does not \
             include wasi:http (componentize-py: your own world, see docs/WIT.md)",
        )
    } else {
        None
    }
}

fn check_capabilities(
    runtime: &Runtime,
    config: &Config,
    source: &Source,
    component: &wasmtime::component::Component,
) -> Result<()> {
    let name = &source.manifest.name;
    let declared = &source.manifest.capabilities;
    for (import, _) in component.component_type().imports(runtime.engine()) {
        match capability_of_import(import) {
            // Type-only interfaces of our package, and settings, carry no capability.
            Some(interface) if registry::UNGRANTED.contains(&interface) => {}
            Some(capability) if !declared.iter().any(|d| d == capability) => bail!(
                "plugin '{name}' ({}) imports {import}, but its manifest does not declare capability '{capability}'",
                source.origin
            ),
            Some(_) => {}
            None if let Some(hint) = build_mistake(import) => bail!(
                "plugin '{name}' ({}) imports {import}, which the host does not provide: {hint}",
                source.origin
            ),
            None if import.starts_with("wasi:") => {}
            None => bail!(
                "plugin '{name}' ({}) imports {import}, which the host does not provide",
                source.origin
            ),
        }
    }
    for capability in declared.iter().filter_map(|d| registry::find(d)) {
        if let Some(owner) = capability.reserved_to
            && !(source.bundled && name == owner)
        {
            bail!(
                "plugin '{name}' ({}) asks for capability '{}', which only the bundled '{owner}' plugin may have",
                source.origin,
                capability.name
            );
        }
    }
    let missing = missing_grants(config, &source.manifest, source.bundled);
    if !missing.is_empty() {
        bail!(
            "plugin '{name}' ({}) {}",
            source.origin,
            describe_missing(config, name, &missing)
        );
    }
    Ok(())
}

/// The declared capabilities of a plugin that `config` does not grant:
/// bundled plugins are granted their manifest unless the operator lists
/// grants; drop-ins get only what the operator lists.
pub fn missing_grants(config: &Config, manifest: &Manifest, bundled: bool) -> Vec<String> {
    let listed = config
        .plugin
        .get(&manifest.name)
        .and_then(|p| p.grants.as_ref());
    manifest
        .capabilities
        .iter()
        .filter(|c| match listed {
            Some(grants) => !grants.contains(c),
            None => !bundled,
        })
        .cloned()
        .collect()
}

/// "needs capability 'x', not granted: add ..." for start-up errors and reloads.
pub fn describe_missing(config: &Config, name: &str, missing: &[String]) -> String {
    format!(
        "needs capability {}, not granted: add {} to [plugin.{name}] grants in {}",
        missing
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(", "),
        missing
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", "),
        config.file.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_imports_say_which_flag_to_use() {
        let hint = build_mistake("wasi:http/outgoing-handler@0.2.3").unwrap();
        assert!(hint.contains("--disable http fetch-event"), "{hint}");
        // Linked (and sandboxed: no network) for Rust's std.
        assert!(build_mistake("wasi:sockets/tcp@0.2.3").is_none());
        assert!(build_mistake("wasi:io/streams@0.2.3").is_none());
    }
}
