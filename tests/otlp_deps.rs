//! Keeps async runtimes out of the server: tokio, hyper, reqwest (and the
//! gRPC stack that would pull them in) must not be in the dependency graph.
//! Reads `Cargo.lock` (every package of the graph, dev ones included),
//! which is cheap and needs no network.

#[test]
fn no_async_runtime_in_the_lock_file() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .expect("Cargo.lock next to Cargo.toml");
    let names: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    assert!(names.len() > 10, "Cargo.lock looks empty");
    let banned = [
        "tokio",
        "hyper",
        "reqwest",
        "tonic",
        "mio",
        "h2",
        "async-std",
    ];
    let found: Vec<&&str> = names.iter().filter(|n| banned.contains(n)).collect();
    assert!(found.is_empty(), "banned crates in Cargo.lock: {found:?}");
}
