//! Build-script helper that compiles a cargo workspace of guest plugins for
//! `wasm32-wasip2`, whose linker emits components directly.
//!
//! Build scripts of the host (bundled plugins) and of the end-to-end tests
//! (misbehaving test plugins, the example plugin) both need this; it lives in
//! one place so both build guests the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// One compiled guest: the package name and the path of its component.
#[derive(Debug, Clone)]
pub struct Guest {
    pub name: String,
    pub wasm: PathBuf,
    /// The directory of the package's Cargo.toml (its `plugin.toml` lives there).
    pub package_dir: PathBuf,
}

/// Builds every `cdylib`/`bin` package of the workspace at `workspace_dir` in
/// release mode into `target_dir`, and returns the components it produced.
///
/// The nested cargo runs with a separate target directory so it never waits on
/// the lock of the outer build, and without the outer build's flags, which are
/// meant for the host target.
pub fn build_workspace(workspace_dir: &Path, target_dir: &Path) -> Result<Vec<Guest>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_dir)
        .arg("build")
        .arg("--release")
        .arg("--workspace")
        .arg("--target")
        .arg(TARGET)
        .arg("--target-dir")
        .arg(target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_PKG_NAME",
    ] {
        cmd.env_remove(var);
    }
    // Build scripts see profile settings of the outer build through these;
    // the guests always build optimised.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_PROFILE_") || key.starts_with("CARGO_CFG_") {
            cmd.env_remove(key);
        }
    }
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("may not be installed")
            || stderr.contains("can't find crate for `std`")
        {
            format!("\n\nThe {TARGET} target is missing: run `rustup target add {TARGET}`.")
        } else {
            String::new()
        };
        return Err(format!(
            "building guest plugins in {} failed:\n{stderr}{hint}",
            workspace_dir.display()
        ));
    }

    let release_dir = target_dir.join(TARGET).join("release");
    let mut guests = Vec::new();
    for package_dir in workspace_members(workspace_dir)? {
        let name = package_name(&package_dir)?;
        let file = name.replace('-', "_");
        let wasm = [
            release_dir.join(format!("{file}.wasm")),
            release_dir.join(format!("{name}.wasm")),
        ]
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| {
            format!(
                "no component for package {name} in {}",
                release_dir.display()
            )
        })?;
        guests.push(Guest {
            name,
            wasm,
            package_dir,
        });
    }
    Ok(guests)
}

/// Every file that should make cargo rerun a build script that builds guests.
pub fn rerun_if_changed(paths: &[&Path]) {
    for path in paths {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Member directories from the `members = [...]` list of a workspace manifest.
///
/// A tiny parser is enough: our guest workspaces list plain relative paths.
fn workspace_members(workspace_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let manifest = std::fs::read_to_string(workspace_dir.join("Cargo.toml"))
        .map_err(|e| format!("{}: {e}", workspace_dir.join("Cargo.toml").display()))?;
    // The `members = [...]` line itself, not the word in a comment.
    let start = manifest
        .lines()
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, line)| {
            line.trim_start()
                .strip_prefix("members")
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|(at, _)| at)
        .ok_or_else(|| format!("{}: no members list", workspace_dir.display()))?;
    let list = &manifest[start..];
    let open = list.find('[').ok_or("members: expected [")?;
    let close = list.find(']').ok_or("members: expected ]")?;
    Ok(list[open + 1..close]
        .split(',')
        .map(|s| s.trim().trim_matches('"'))
        .filter(|s| !s.is_empty())
        .map(|s| workspace_dir.join(s))
        .collect())
}

fn package_name(package_dir: &Path) -> Result<String, String> {
    let manifest_path = package_dir.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    manifest
        .lines()
        .map(str::trim)
        .find_map(|line| {
            let rest = line.strip_prefix("name")?.trim_start().strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_string())
        })
        .ok_or_else(|| format!("{}: no package name", manifest_path.display()))
}
