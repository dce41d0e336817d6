//! Five nodes in one process, on a virtual clock: they form a cluster through
//! one seed, then one stops and the others report it down.
//!
//! Run it with `cargo run --example five_nodes`. It is also a test
//! (`cargo test --example five_nodes`). The nodes are real `Node`s driven by
//! the simulator's `World` (`rollcall-sim`, a dev-dependency), on a network
//! whose every link takes 1 ms: the same event loop the simulator runs
//! thousands of nodes on.

use std::time::Duration;

use rollcall_sim::{World, WorldConfig};

/// Prints the events reported since the `from`-th one; returns how many
/// there are now.
fn print_events(world: &World, from: usize) -> usize {
    for (t, i, e) in &world.events()[from..] {
        let name = world.peer(*i).name;
        println!("{:>8.3}s  {}  {e:?}", t.as_secs_f64(), name);
    }
    world.events().len()
}

fn run() -> (World, bool, bool) {
    let mut world = World::new(&WorldConfig::plain(5)).expect("five nodes");
    // Node 0 is the seed; the others join it.
    for i in 0..5 {
        world.start(i, &[0]);
    }
    let four_members = |w: &World| w.nodes().all(|(_, n)| n.num_members() == 4);
    let formed = world.run_while(world.now() + Duration::from_secs(30), four_members);
    let printed = print_events(&world, 0);
    println!(
        "cluster formed: {formed} at {:.3}s",
        world.now().as_secs_f64()
    );

    // Node 4's host stops: nothing answers for it any more.
    world.crash(4, false);
    let gone = world.peer(4).name;
    let reported_down = |w: &World| {
        w.nodes()
            .all(|(_, n)| n.num_members() == 3 && n.members().all(|m| m.name() != &gone))
    };
    let detected = world.run_while(world.now() + Duration::from_secs(60), reported_down);
    print_events(&world, printed);
    println!(
        "{gone} reported down by all others: {detected} at {:.3}s",
        world.now().as_secs_f64()
    );
    (world, formed, detected)
}

fn main() {
    let (_, formed, detected) = run();
    if !(formed && detected) {
        std::process::exit(1);
    }
}

#[test]
fn five_nodes_form_a_cluster_and_report_a_stopped_one_down() {
    let (world, formed, detected) = run();
    assert!(
        formed,
        "the five nodes did not all see four members within 30 virtual seconds"
    );
    assert!(
        detected,
        "the stopped node was not reported down by all four others within 60 s"
    );
    let down = world
        .node(0)
        .unwrap()
        .membership()
        .filter(|m| m.state() == rollcall::core::State::Down)
        .count();
    assert_eq!(down, 1);
}
