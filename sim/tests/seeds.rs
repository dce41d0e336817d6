//! The seeds check, CI-sized: 20 seeds of each lifecycle scenario on 12
//! nodes. The full run is `rollcall-sim seeds --scenario S --seeds 500 --nodes 20`.

use rollcall_sim::seeds::{check_seed, reproduce};
use rollcall_sim::{NetProfile, Scenario, Tuning};

#[test]
fn twenty_seeds_of_each_lifecycle_scenario_agree_in_bound_without_resurrection() {
    let seeds: u64 = std::env::var("ROLLCALL_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut failed = vec![];
    for scenario in [
        Scenario::PartitionHeal,
        Scenario::Partition3,
        Scenario::LongPartition,
        Scenario::ForceLeave,
        Scenario::Autoclean,
    ] {
        for seed in 1..=seeds {
            let c = check_seed(scenario, seed, 12, NetProfile::Lan, Tuning::default()).unwrap();
            if !c.ok() {
                failed.push(format!(
                    "{scenario} seed {seed}: {}; reproduce with {}",
                    c.failures.join("; "),
                    reproduce(scenario, seed, 12, NetProfile::Lan, true)
                ));
            }
        }
    }
    assert!(failed.is_empty(), "failed:\n{}", failed.join("\n"));
}
