//! `examples/systemd/rollcall.service` is a unit systemd accepts, and a
//! hardened one: `systemd-analyze verify` reports nothing about it (with
//! `ExecStart` pointed at the binary under test), and `systemd-analyze
//! security --offline=true` rates its exposure "OK" (under 2.0 of 10).
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::Command;

const UNIT: &str = include_str!("../examples/systemd/rollcall.service");

/// A directory of the test's own under the target dir, emptied first (the
/// tests run in parallel: one shared directory, emptied by one while the
/// other wrote into it, failed them at random).
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("systemd_unit")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The unit, as installed, with `ExecStart` at the binary under test, in
/// the scratch directory of `test`.
fn installed_unit(test: &str) -> PathBuf {
    let unit = UNIT.replace("/usr/local/bin/rollcall", env!("CARGO_BIN_EXE_rollcall"));
    let path = scratch(test).join("rollcall.service");
    std::fs::write(&path, unit).unwrap();
    path
}

fn systemd_analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run systemd-analyze ({e}): install the `systemd` package \
                 (scripts/install-deps does)"
            )
        })
}

#[test]
fn the_unit_verifies_without_a_complaint() {
    let unit = installed_unit("verify");
    let out = systemd_analyze(&["verify", unit.to_str().unwrap()]);
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed: {said}"
    );
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify complained: {said}"
    );
}

#[test]
fn the_unit_runs_as_its_own_user_with_its_own_state_directory_and_no_privileges() {
    for line in [
        "DynamicUser=yes",
        "StateDirectory=rollcall",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
    ] {
        assert!(UNIT.lines().any(|l| l.trim() == line), "{line} missing");
    }
    let unit = installed_unit("security");
    let out = systemd_analyze(&["security", "--offline=true", unit.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let level = said
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for rollcall.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {said}"));
    assert!(level < 2.0, "exposure {level} of 10:\n{said}");
}
