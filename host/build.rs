//! Builds the bundled plugins in `guest-plugins/` for wasm32-wasip2 and
//! generates `bundled.rs`, which embeds each component with its manifest so
//! that the `dbagent` binary needs nothing else at run time.

use std::path::PathBuf;

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    // The HTTP plugins, and the action modules (a workspace of their own:
    // they build the SDK with its `action-module` feature).
    let workspaces = [root.join("guest-plugins"), root.join("guest-actions")];
    dbagent_guest_build::rerun_if_changed(&[
        &workspaces[0],
        &workspaces[1],
        &root.join("sdk"),
        &root.join("wit"),
    ]);

    // A stable directory beside the outer target keeps guest builds incremental.
    let target_dir = std::env::var_os("DBAGENT_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("wasm-guests"));
    // For quick host-only checks: a binary without bundled plugins.
    println!("cargo:rerun-if-env-changed=DBAGENT_NO_BUNDLED");
    let mut guests = Vec::new();
    if std::env::var_os("DBAGENT_NO_BUNDLED").is_none() {
        for workspace in &workspaces {
            match dbagent_guest_build::build_workspace(workspace, &target_dir) {
                Ok(built) => guests.extend(built),
                Err(message) => panic!("{message}"),
            }
        }
    }

    let mut generated = String::from(
        "/// Bundled plugins: (manifest TOML, component bytes, OpenAPI fragment).\npub static BUNDLED: &[(&str, &[u8], Option<&str>)] = &[\n",
    );
    for guest in &guests {
        let manifest = guest.package_dir.join("plugin.toml");
        let openapi = guest.package_dir.join("openapi.json");
        let openapi = if openapi.is_file() {
            format!("Some(include_str!({:?}))", openapi.display().to_string())
        } else {
            "None".to_string()
        };
        generated.push_str(&format!(
            "    (include_str!({:?}), include_bytes!({:?}), {openapi}),\n",
            manifest.display().to_string(),
            guest.wasm.display().to_string()
        ));
    }
    generated.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("bundled.rs");
    std::fs::write(&out, generated).expect("write bundled.rs");
}
