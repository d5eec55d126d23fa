//! Keeps the crate pure: no I/O, clock or OS-randomness crate in its normal dependency tree, and
//! no clock or OS randomness named in its source.

use std::path::Path;
use std::process::Command;

const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "libp2p",
    "rocksdb",
    "getrandom",
    "rand",
    "rand_core",
    "chrono",
    "time",
    "async-std",
    "mio",
    "socket2",
    "quanta",
    "fastrand",
    "uuid",
];

const FORBIDDEN_SOURCE: &[&str] = &[
    "std::time",
    "SystemTime",
    "Instant",
    "thread_rng",
    "std::net",
    "std::fs",
    "std::thread",
    "std::env",
];

#[test]
fn the_normal_dependency_tree_has_no_io_clock_or_randomness() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "corridor-consensus",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        assert!(
            !FORBIDDEN_CRATES.contains(&name),
            "forbidden dependency {name} in:\n{tree}"
        );
    }
    assert!(
        tree.contains("corridor-consensus"),
        "unexpected cargo tree output:\n{tree}"
    );
}

fn sources(directory: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("source directory is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn the_source_names_no_clock_or_os_randomness() {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source is readable");
        for word in FORBIDDEN_SOURCE {
            assert!(!text.contains(word), "{} names {word}", file.display());
        }
    }
}
