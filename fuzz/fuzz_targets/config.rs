//! Arbitrary bytes as the agent's TOML file, with arbitrary `ROLLCALL_*`
//! variables, into [`AgentConfig::from_toml`] and the `--print-config`
//! path ([`AgentConfig::printable`]). Neither may panic; both accept and
//! refuse the same inputs; what is printed reads back as itself.
//!
//! The input is the file, then a NUL byte, then one variable per line,
//! `NAME=VALUE`, its name prefixed with `ROLLCALL_` unless it already is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall::runtime::config::ENV_PREFIX;
use rollcall::AgentConfig;

fuzz_target!(|data: &[u8]| {
    let (file, vars) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(file);
    let env: Vec<(String, String)> = String::from_utf8_lossy(vars)
        .lines()
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            let name = if name.starts_with(ENV_PREFIX) {
                name.to_owned()
            } else {
                format!("{ENV_PREFIX}{name}")
            };
            (name, value.to_owned())
        })
        .collect();

    let loaded = AgentConfig::from_toml(&text, "fuzz.toml", env.clone());
    let printed = AgentConfig::printable(&text, "fuzz.toml", env);
    match (&loaded, &printed) {
        (Ok(_), Ok(printed)) => {
            let again = AgentConfig::printable(printed, "printed.toml", std::iter::empty())
                .expect("the printed configuration reads back");
            assert_eq!(
                &again, printed,
                "the printed configuration is a fixed point"
            );
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("from_toml and printable disagree: {loaded:?} / {printed:?}"),
    }
});
