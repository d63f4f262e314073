//! Builds the guests the end-to-end tests install as drop-in plugins: the
//! misbehaving plugins of `tests/plugins/` and the example plugins of
//! `examples/`. Each lands as `$OUT_DIR/guests/NAME/{NAME.wasm,NAME.toml}`,
//! and the tests find that directory through `DBAGENT_TEST_GUESTS`.

use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    // Outside OUT_DIR, so that the nested builds stay incremental across
    // changes to this crate; the same directory as the bundled plugins', so
    // the SDK and its dependencies are built for wasm once.
    let target_dir = root.join("target").join("wasm-guests");
    let guests_dir = out_dir.join("guests");

    let workspaces = [
        manifest_dir.join("plugins"),
        manifest_dir.join("actions"),
        root.join("examples"),
    ];
    for workspace in &workspaces {
        watch_workspace(workspace);
        let guests = dbagent_guest_build::build_workspace(workspace, &target_dir)
            .unwrap_or_else(|message| panic!("{message}"));
        for guest in guests {
            let dest = guests_dir.join(&guest.name);
            std::fs::create_dir_all(&dest)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dest.display()));
            copy(&guest.wasm, &dest.join(format!("{}.wasm", guest.name)));
            copy(
                &guest.package_dir.join("plugin.toml"),
                &dest.join(format!("{}.toml", guest.name)),
            );
        }
    }

    dbagent_guest_build::rerun_if_changed(&[
        &root.join("sdk").join("Cargo.toml"),
        &root.join("sdk").join("src"),
        &root.join("wit"),
        &root.join("guest-build").join("src"),
    ]);
    println!(
        "cargo:rustc-env=DBAGENT_TEST_GUESTS={}",
        guests_dir.display()
    );
}

/// Watches a guest workspace's sources but not its `target/` (a manual
/// build there must not rerun this script).
fn watch_workspace(workspace: &Path) {
    let mut paths = vec![workspace.join("Cargo.toml")];
    if workspace.join("Cargo.lock").exists() {
        paths.push(workspace.join("Cargo.lock"));
    }
    let entries = std::fs::read_dir(workspace)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", workspace.display()));
    for entry in entries.flatten() {
        let member = entry.path();
        if member.join("Cargo.toml").is_file() {
            for file in ["Cargo.toml", "plugin.toml", "src"] {
                paths.push(member.join(file));
            }
        }
    }
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    dbagent_guest_build::rerun_if_changed(&refs);
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", from.display(), to.display()));
}
