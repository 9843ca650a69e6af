//! The dependency rule of docs/architecture.md, checked on `cargo metadata`: a crate that
//! gains a forbidden dependency fails this test, whoever adds it.

use std::collections::{BTreeMap, BTreeSet};

/// (crate, workspace crates it must never depend on).
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("common", &["*"]),
    ("taos-sql", &["*except common"]),
    ("tsdb", &["*except common"]),
    ("taos-vnode", &["taos-mnode", "taos-query", "taos-sql", "taosc", "taosd"]),
    ("taos-mnode", &["taos-vnode", "tsdb", "taos-query", "taosc", "taosd"]),
    ("taos-query", &["taos-vnode", "taos-mnode", "tsdb", "taosc", "taosd"]),
    ("taosc", &["taos-vnode", "taos-mnode", "tsdb", "taos-query", "taosd"]),
    ("taos-edge", &["taos-vnode", "taos-mnode", "tsdb", "taos-query", "taosd", "taosx", "taosadapter"]),
    ("taosadapter", &["taos-vnode", "taos-mnode", "tsdb", "taos-query", "taosd", "taosx", "taosx-agent"]),
    ("taosx", &["taos-vnode", "taos-mnode", "tsdb", "taos-query", "taosd", "taosadapter", "taosx-agent"]),
    ("taosx-agent", &["taos-vnode", "taos-mnode", "tsdb", "taos-query", "taosd", "taosadapter", "taosx", "taosc"]),
];

#[test]
fn workspace_crates_depend_only_downwards() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(&root)
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let members: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    // Normal and build dependencies on other workspace crates (dev-dependencies may reach up:
    // tests drive real binaries).
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in packages {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let set = deps.entry(name).or_default();
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let dep = d["name"].as_str().unwrap_or_default();
            if members.contains(dep) && d["kind"].as_str() != Some("dev") {
                set.insert(dep.to_string());
            }
        }
    }
    let mut broken = Vec::new();
    for (krate, forbidden) in FORBIDDEN {
        let Some(have) = deps.get(*krate) else {
            broken.push(format!("{krate}: not in the workspace"));
            continue;
        };
        for dep in have {
            let bad = forbidden.iter().any(|f| {
                *f == "*" || *f == dep || (f.starts_with("*except ") && !f[8..].split(',').any(|a| a.trim() == dep))
            });
            if bad {
                broken.push(format!("{krate} -> {dep}"));
            }
        }
    }
    assert!(broken.is_empty(), "forbidden dependencies: {broken:?}");
}
