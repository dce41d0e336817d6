//! The command line: one JSON object with every documented field, a plot,
//! clear errors for bad input.

use std::process::Command;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rollcall-sim"))
}

#[test]
fn run_with_json_prints_exactly_one_object_with_every_documented_field() {
    let out = sim()
        .args(["run", "--nodes", "8", "--scenario", "crash", "--seed", "3"])
        .args(["--duration", "30", "--json", "--check-determinism"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    for key in [
        "seed",
        "nodes",
        "scenario",
        "converged",
        "convergence_s",
        "converged_fraction",
        "slowest_node_members",
        "detect_first_s",
        "detect_all_s",
        "false_positives",
        "datagrams_per_node_s",
        "bytes_per_node_s",
        "virtual_s",
        "wall_s",
        "node_seconds_per_wall_s",
        "peak_rss_mib",
        "sync_bytes_per_node_s",
        "gossip_bytes_per_node_s",
        "resurrections",
        "max_view_size",
        "timeline",
        "partitions",
        "reproduce",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["seed"], 3);
    assert_eq!(v["scenario"], "crash");
    assert_eq!(v["deterministic"], true);
}

#[test]
fn plot_writes_an_svg_of_the_convergence_curve() {
    let dir = std::env::temp_dir().join(format!("rollcall-sim-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.svg");
    let out = sim()
        .args([
            "run",
            "--nodes",
            "6",
            "--scenario",
            "crash",
            "--duration",
            "20",
            "--plot",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") || svg.contains("<svg"));
    assert!(svg.contains("polyline") || svg.contains("path"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn partition_heal_prints_both_times_and_its_plot_marks_the_partition_and_the_heal() {
    let dir = std::env::temp_dir().join(format!("rollcall-sim-heal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("heal.svg");
    let out = sim()
        // The README's main command, small: at 20 nodes the halves see
        // each other stopped about 17 s into the 30 s cut.
        .args(["run", "--nodes", "20", "--seed", "1"])
        .args(["--scenario", "partition-heal", "--plot"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let times = |prefix: &str| -> Vec<f64> {
        text.lines()
            .filter_map(|l| l.split_once(prefix))
            .filter_map(|(_, rest)| rest.trim_end_matches(" s").parse().ok())
            .collect()
    };
    let apart = times("every side sees the other side stopped after ");
    let agreed = times("heal: agreed again after ");
    assert!(apart.len() == 1 && apart[0] > 0.0, "{text}");
    assert!(agreed.len() == 1 && agreed[0] > 0.0, "{text}");
    assert!(!text.contains("views correct after 0.000 s"), "{text}");
    let svg = std::fs::read_to_string(&path).unwrap();
    // Each mark's label is one text line per line of the label.
    let lines: Vec<&str> = svg.lines().map(str::trim).collect();
    for label in [
        "partition (symmetric) into 2 sides".to_owned(),
        format!(
            "every side sees the other side stopped after {:.3} s",
            apart[0]
        ),
        "heal".to_owned(),
        format!("agreed again after {:.3} s", agreed[0]),
    ] {
        assert!(lines.contains(&label.as_str()), "no {label:?} in the plot");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_scenario_file_is_a_clear_error_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("rollcall-sim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "duration = 10\n[[ops]]\nat = 1\nop = \"crash\"\nnode = 99\n",
    )
    .unwrap();
    let out = sim()
        .args(["run", "--nodes", "4", "--file"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node 99 does not exist"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out = sim().args(["run", "--scenario", "nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("partition-heal"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn formation_joined_forms_by_joining_even_where_the_scenario_restores() {
    let out = sim()
        .args(["run", "--nodes", "8", "--scenario", "crash"])
        .args(["--formation", "joined", "--duration", "10", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["formed"], true, "{v}");
    // Joining takes time; a restored start begins its timeline at 1 s.
    assert!(v["formation_s"].as_f64().unwrap() >= 2.0, "{v}");
    assert!(v["reproduce"]
        .as_str()
        .unwrap()
        .contains("--formation joined"));
}

#[test]
fn the_old_formation_words_fail_naming_the_new_ones() {
    for (old, new) in [
        ("converged", "--formation restored"),
        ("join", "--formation joined"),
    ] {
        let out = sim()
            .args(["run", "--nodes", "4", "--bootstrap", old])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--bootstrap {old}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("use {new}")), "{err}");
    }
    let dir = std::env::temp_dir().join(format!("rollcall-sim-words-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (old, new) in [("converged", "\"joined\""), ("join", "\"staggered\"")] {
        let path = dir.join(format!("{old}.toml"));
        std::fs::write(&path, format!("formation = \"{old}\"\nduration = 10\n")).unwrap();
        let out = sim()
            .args(["run", "--nodes", "4", "--file"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "formation = {old:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("is now called {new}")), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_one_seed_sweep_prints_its_verdict() {
    let out = sim()
        .args(["sweep", "--nodes", "10"])
        .env("ROLLCALL_SIM_SEED", "5")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("seed      5: ok"), "{text}");
    assert!(text.contains("liveness bound"), "{text}");
}
