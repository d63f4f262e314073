//! `dbagent plugin new NAME [--lang rust|python|js] [--dir DIR]`: a plugin
//! ready to build outside any repository: its manifest, a WIT world that
//! imports only what it uses (`postgres`, `log`) with the `dbagent:api`
//! package beside it, the code of one route, a build script, and a README
//! that says how to go from there to a served route.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The `dbagent:api` package, as the SDK carries it.
const WIT_PACKAGE: &[(&str, &str)] = &[
    ("actions.wit", include_str!("../../../sdk/wit/actions.wit")),
    ("agent.wit", include_str!("../../../sdk/wit/agent.wit")),
    ("barman.wit", include_str!("../../../sdk/wit/barman.wit")),
    ("control.wit", include_str!("../../../sdk/wit/control.wit")),
    (
        "databases.wit",
        include_str!("../../../sdk/wit/databases.wit"),
    ),
    ("http.wit", include_str!("../../../sdk/wit/http.wit")),
    (
        "influxdb.wit",
        include_str!("../../../sdk/wit/influxdb.wit"),
    ),
    ("jobs.wit", include_str!("../../../sdk/wit/jobs.wit")),
    ("log.wit", include_str!("../../../sdk/wit/log.wit")),
    ("metrics.wit", include_str!("../../../sdk/wit/metrics.wit")),
    ("mysql.wit", include_str!("../../../sdk/wit/mysql.wit")),
    (
        "notifications.wit",
        include_str!("../../../sdk/wit/notifications.wit"),
    ),
    (
        "operations.wit",
        include_str!("../../../sdk/wit/operations.wit"),
    ),
    (
        "postgres.wit",
        include_str!("../../../sdk/wit/postgres.wit"),
    ),
    ("redis.wit", include_str!("../../../sdk/wit/redis.wit")),
    (
        "settings.wit",
        include_str!("../../../sdk/wit/settings.wit"),
    ),
    ("store.wit", include_str!("../../../sdk/wit/store.wit")),
    ("system.wit", include_str!("../../../sdk/wit/system.wit")),
    ("worlds.wit", include_str!("../../../sdk/wit/worlds.wit")),
];

const RUST_LIB: &str = include_str!("rust_lib.rs.txt");
const PYTHON_APP: &str = include_str!("python_app.py.txt");
const PYTHON_HELPERS: &str = include_str!("../../../examples/hello-py/dbagent.py");
const JS_APP: &str = include_str!("js_app.js.txt");
const JS_HELPERS: &str = include_str!("../../../examples/hello-js/dbagent.js");

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// A plugin name the manifest, the route and the WIT world all accept:
/// lower-case letters, digits and '-', starting with a letter.
fn check_name(name: &str) -> Result<()> {
    let ok = (1..=48).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        bail!(
            "plugin name {name:?}: 1-48 lower-case letters, digits and single '-', starting with a letter"
        );
    }
    Ok(())
}

/// The files of a new plugin, by path relative to its directory.
pub fn files(name: &str, lang: Lang) -> Result<Vec<(PathBuf, String, bool)>> {
    check_name(name)?;
    let fill = |text: &str| text.replace("{{NAME}}", name);
    let mut out: Vec<(PathBuf, String, bool)> = Vec::new();
    let mut add = |path: &str, text: String, executable: bool| {
        out.push((PathBuf::from(path), text, executable));
    };
    let (language, build) = match lang {
        Lang::Rust => ("Rust", "cargo build --release --target wasm32-wasip2"),
        Lang::Python => ("Python (componentize-py)", "componentize-py"),
        Lang::Js => ("JavaScript (componentize-js)", "componentize-js"),
    };
    add(
        "plugin.toml",
        format!(
            "name = \"{name}\"\nversion = \"0.1.0\"\ndescription = \"{name}: a dbagent plugin in {language}\"\nroutes = [\"/{name}\"]\n# What the plugin imports; the operator grants them in [plugin.{name}] grants.\ncapabilities = [\"postgres\", \"log\"]\n"
        ),
        false,
    );
    add(
        "wit/world.wit",
        format!(
            "package local:{name};\n\n/// Only what the plugin uses: the host refuses a plugin importing a\n/// capability it was not granted.\nworld {name} {{\n    import dbagent:api/postgres@0.1.0;\n    import dbagent:api/log@0.1.0;\n    export dbagent:api/handler@0.1.0;\n}}\n"
        ),
        false,
    );
    for (file, text) in WIT_PACKAGE {
        add(
            &format!("wit/deps/dbagent-api/{file}"),
            (*text).to_string(),
            false,
        );
    }
    let wasm = format!("{name}.wasm");
    match lang {
        Lang::Rust => {
            let crate_name = name.replace('-', "_");
            add(
                "Cargo.toml",
                format!(
                    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nwit-bindgen = \"0.63\"\nserde_json = \"1\"\n\n# A workspace of its own.\n[workspace]\n\n[profile.release]\nopt-level = \"s\"\nlto = true\nstrip = true\n"
                ),
                false,
            );
            add("src/lib.rs", fill(RUST_LIB), false);
            add(
                "build.sh",
                format!(
                    "#!/bin/sh\n# Builds {wasm} (needs: rustup target add wasm32-wasip2).\nset -eu\ncd \"$(dirname \"$0\")\"\n{build}\ncp \"${{CARGO_TARGET_DIR:-target}}/wasm32-wasip2/release/{crate_name}.wasm\" {wasm}\n"
                ),
                true,
            );
        }
        Lang::Python => {
            add("app.py", fill(PYTHON_APP), false);
            add("dbagent.py", PYTHON_HELPERS.to_string(), false);
            add(
                "build.sh",
                format!(
                    "#!/bin/sh\n# Builds {wasm} (needs: pip install componentize-py==0.25.1).\nset -eu\ncd \"$(dirname \"$0\")\"\n\"${{COMPONENTIZE_PY:-componentize-py}}\" -d wit -w {name} componentize -p . app -o {wasm}\n"
                ),
                true,
            );
        }
        Lang::Js => {
            add("app.js", fill(JS_APP), false);
            add("dbagent.js", JS_HELPERS.to_string(), false);
            add(
                "build.sh",
                format!(
                    "#!/bin/sh\n# Builds {wasm} (needs: npm install @bytecodealliance/componentize-js@0.23.0).\n# -d http fetch-event: the host provides no wasi:http.\nset -eu\ncd \"$(dirname \"$0\")\"\n\"${{COMPONENTIZE_JS:-componentize-js}}\" app.js --wit wit --world-name {name} -d http fetch-event -o {wasm}\n"
                ),
                true,
            );
        }
    }
    add(
        "README.md",
        format!(
            "# {name}\n\nA dbagent plugin in {language}: `GET /{name}` answers who asked and how many\ndatabases the server has.\n\n1. Build: `./build.sh` writes `{wasm}`.\n2. Install: copy it and the manifest into the agent's plugin directory\n   (`[plugins] dir`) under the plugin's name:\n\n   ```sh\n   cp {wasm} /etc/dbagent/plugins/{name}.wasm\n   cp plugin.toml /etc/dbagent/plugins/{name}.toml\n   ```\n\n3. Grant what the manifest declares, in the agent's configuration:\n\n   ```toml\n   [plugin.{name}]\n   grants = [\"postgres\", \"log\"]\n   ```\n\n4. Restart the agent (or reload it), then `curl -H 'Authorization: Bearer …' localhost:2345/{name}`.\n\nThe world in `wit/world.wit` imports only what the plugin uses; add an\ninterface of `wit/deps/dbagent-api` there (and to the manifest's\n`capabilities`) to use another capability.\n"
        ),
        false,
    );
    Ok(out)
}

/// Writes a new plugin into `dir` (which must not exist or be empty).
pub fn create(name: &str, lang: Lang, dir: &Path) -> Result<Vec<PathBuf>> {
    let files = files(name, lang)?;
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let mut written = Vec::new();
    for (path, text, executable) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        if executable {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", path.display()))?;
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_is_the_sdk_s_whole() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/wit");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = WIT_PACKAGE.iter().map(|(f, _)| *f).collect();
        assert_eq!(on_disk, embedded, "add the new WIT file to WIT_PACKAGE");
    }

    #[test]
    fn names_and_files() {
        for bad in ["", "Hello", "1a", "a_b", "a--b", "a-", "a b"] {
            assert!(files(bad, Lang::Rust).is_err(), "{bad}");
        }
        let rust = files("greet-me", Lang::Rust).unwrap();
        let lib = rust
            .iter()
            .find(|(p, _, _)| p.ends_with("src/lib.rs"))
            .unwrap();
        assert!(lib.1.contains("world: \"greet-me\""));
        assert!(!lib.1.contains("{{NAME}}"));
        let build = rust
            .iter()
            .find(|(p, _, _)| p.ends_with("build.sh"))
            .unwrap();
        assert!(build.1.contains("greet_me.wasm") && build.2);
        for lang in [Lang::Python, Lang::Js] {
            let all = files("greet", lang).unwrap();
            assert!(
                all.iter()
                    .any(|(p, _, _)| p.ends_with("wit/deps/dbagent-api/postgres.wit"))
            );
        }
    }
}
