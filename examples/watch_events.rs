//! Subscribe to membership events: three nodes form a cluster through a
//! static seed list, then one stops without leaving (as a crash would) and
//! the others report it down.
//!
//! The nodes run in this one process on 127.0.9.11-13. Run it with
//! `cargo run --example watch_events`; it ends by itself within about 15 s.

use std::time::Duration;

use rollcall::core::{Cookie, Event, NodeName, Profile};
use rollcall::runtime::DiscoveryStrategy;
use rollcall::{Agent, AgentConfig};
use tokio::time::{timeout, Instant};

fn config(name: &str, seeds: &[NodeName]) -> Result<AgentConfig, Box<dyn std::error::Error>> {
    let mut config = AgentConfig::new(name.parse()?);
    config.cookie = Cookie::new("watch example cookie");
    config.profile = Profile::Local;
    config.expected_size = 3;
    config.discovery = DiscoveryStrategy::Static {
        seeds: seeds.to_vec(),
    };
    Ok(config)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names = ["watch@127.0.9.11", "watch@127.0.9.12", "watch@127.0.9.13"];
    let seeds: Vec<NodeName> = names.iter().map(|n| n.parse()).collect::<Result<_, _>>()?;

    let watcher = Agent::start(config(names[0], &seeds)?).await?;
    let mut events = watcher.handle().subscribe();
    let started = Instant::now();
    let b = Agent::start(config(names[1], &seeds)?).await?;
    let c = Agent::start(config(names[2], &seeds)?).await?;

    // Print events until the watcher has seen both others up.
    let mut up = 0;
    timeout(Duration::from_secs(10), async {
        while up < 2 {
            let event = events.recv().await?;
            println!("{:>6.3}s  {event:?}", started.elapsed().as_secs_f64());
            if matches!(event, Event::MemberUp(_)) {
                up += 1;
            }
        }
        Ok::<_, tokio::sync::broadcast::error::RecvError>(())
    })
    .await??;

    // c stops without leaving: the failure detector must notice.
    c.stop(false, Duration::from_secs(2)).await?;
    println!(
        "{:>6.3}s  stopped {} without leaving",
        started.elapsed().as_secs_f64(),
        names[2]
    );
    timeout(Duration::from_secs(15), async {
        loop {
            let event = events.recv().await?;
            println!("{:>6.3}s  {event:?}", started.elapsed().as_secs_f64());
            if matches!(&event, Event::MemberDown(id) if id.name().as_str() == names[2]) {
                return Ok::<_, tokio::sync::broadcast::error::RecvError>(());
            }
        }
    })
    .await??;
    println!("status: {}", watcher.handle().status().await?);

    b.stop(true, Duration::from_secs(2)).await?;
    watcher.stop(true, Duration::from_secs(2)).await?;
    Ok(())
}
