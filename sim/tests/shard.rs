//! Sweeps and seed checks on every core and across machines: the output is
//! the same for every thread count, and the shards of a batch, merged,
//! print exactly what the unsharded batch prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rollcall-sim"))
}

fn run(args: &[&str]) -> Output {
    let out = sim().args(args).output().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "rollcall-sim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `batch` whole on one thread, then as four shards on two threads
/// each, merges the shards, and requires the same stdout, stderr and exit
/// status.
fn shards_merge_to_the_whole(batch: &[&str], dir: &Path) {
    let whole = run(&[batch, &["--threads", "1"]].concat());
    let mut files = Vec::new();
    for k in 1..=4 {
        let file = dir.join(format!("shard-{k}.jsonl"));
        let shard = format!("{k}/4");
        run(&[
            batch,
            &["--threads", "2", "--shard", &shard],
            &["--out", file.to_str().unwrap()],
        ]
        .concat());
        files.push(file);
    }
    // The order of the files does not matter.
    files.reverse();
    let merged = sim().arg("merge").args(&files).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&merged.stdout),
        String::from_utf8_lossy(&whole.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&merged.stderr),
        String::from_utf8_lossy(&whole.stderr)
    );
    assert_eq!(merged.status.code(), whole.status.code());
    assert!(String::from_utf8_lossy(&whole.stdout).lines().count() >= 12);
}

#[test]
fn a_sweep_split_into_four_shards_and_merged_prints_exactly_what_the_unsharded_sweep_prints() {
    let dir = scratch("shard-sweep");
    shards_merge_to_the_whole(&["sweep", "--seeds", "10", "--nodes", "30"], &dir);
}

#[test]
fn a_seeds_check_split_into_four_shards_and_merged_prints_exactly_what_the_unsharded_check_prints()
{
    let dir = scratch("shard-seeds");
    shards_merge_to_the_whole(
        &[
            "seeds",
            "--scenario",
            "partition-heal",
            "--seeds",
            "10",
            "--nodes",
            "12",
        ],
        &dir,
    );
}

#[test]
fn a_sweep_prints_the_same_for_every_thread_count() {
    let batch = ["sweep", "--seeds", "8", "--nodes", "20"];
    let one = run(&[&batch[..], &["--threads", "1"]].concat());
    for threads in ["2", "3", "8"] {
        let many = run(&[&batch[..], &["--threads", threads]].concat());
        assert_eq!(many.stdout, one.stdout, "--threads {threads}");
        assert_eq!(many.stderr, one.stderr, "--threads {threads}");
    }
}

#[test]
fn merge_refuses_shards_that_miss_seeds_or_repeat_them() {
    let dir = scratch("shard-incomplete");
    let mut files = Vec::new();
    for k in 1..=2 {
        let file = dir.join(format!("shard-{k}.jsonl"));
        let shard = format!("{k}/3");
        run(&[
            "sweep",
            "--seeds",
            "6",
            "--nodes",
            "8",
            "--shard",
            &shard,
            "--out",
            file.to_str().unwrap(),
        ]);
        files.push(file);
    }
    let missing = sim().arg("merge").args(&files).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(missing.stdout.is_empty());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("2 of the batch's 6 seeds have no record"),
        "{err}"
    );
    let twice = sim()
        .arg("merge")
        .args([&files[0], &files[0]])
        .output()
        .unwrap();
    assert_eq!(twice.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("appears a second time"));
}
