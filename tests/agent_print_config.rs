//! `rollcall agent --print-config`: the configuration the agent would run
//! with, after the file and the `ROLLCALL_*` variables, as TOML on stdout,
//! the cookie masked; the process exits at once.
#![cfg(feature = "cli")]

mod common;

use std::process::Command;

use common::{text, TempDir, BIN};

#[test]
fn print_config_shows_the_file_and_the_environment_merged_without_the_cookie() {
    let dir = TempDir::new("agent_print_config");
    let file = dir.path().join("rollcall.toml");
    std::fs::write(
        &file,
        "[node]\nname = \"rc1@127.0.0.1\"\ncookie = \"do not print me\"\n\n\
         [cluster]\ndiscovery_strategy = \"static\"\nbase_port = 5000\n\n\
         [cluster.static]\nseeds = [\"rc1@127.0.0.1\"]\n",
    )
    .expect("write the config");
    let out = Command::new(BIN)
        .args(["agent", "--print-config", "--config"])
        .arg(&file)
        .env(
            "ROLLCALL_CLUSTER__STATIC__SEEDS",
            "rc1@127.0.0.1,rc2@127.0.0.1",
        )
        .env("ROLLCALL_CLUSTER__AUTOHEAL", "false")
        .env("ROLLCALL_LOG", "not a key: no double underscore")
        .output()
        .expect("run rollcall");
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    for line in [
        "name = \"rc1@127.0.0.1\"",
        "cookie = \"********\"",
        "discovery_strategy = \"static\"",
        "base_port = 5000",
        "autoheal = false",
        "seeds = [\"rc1@127.0.0.1\", \"rc2@127.0.0.1\"]",
        "discovery_interval = \"30s\"",
    ] {
        assert!(printed.contains(line), "{line:?} missing from\n{printed}");
    }
    assert!(!printed.contains("do not print me"), "{printed}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("do not print me"));
}

#[test]
fn print_config_refuses_a_bad_variable_naming_it() {
    let out = Command::new(BIN)
        .args(["agent", "--print-config"])
        .env("ROLLCALL_CLUSTER__AUTOCLEAN", "soon")
        .output()
        .expect("run rollcall");
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("environment variable ROLLCALL_CLUSTER__AUTOCLEAN: cluster.autoclean:"),
        "{stderr}"
    );
}
