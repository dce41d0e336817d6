//! Embed a node in your program: start it from a config, join a cluster,
//! read the status, leave.
//!
//! Two nodes run side by side in this one process, on 127.0.9.1 and
//! 127.0.9.2 (port 4370 each, by the convention). Run it with
//! `cargo run --example embed_node`; it ends by itself within seconds.

use std::time::Duration;

use rollcall::core::{Cookie, Profile};
use rollcall::{Agent, AgentConfig};

fn config(name: &str) -> Result<AgentConfig, Box<dyn std::error::Error>> {
    let mut config = AgentConfig::new(name.parse()?);
    config.cookie = Cookie::new("embed example cookie");
    config.profile = Profile::Local;
    Ok(config)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Agent::start(config("app@127.0.9.1")?).await?;
    let b = Agent::start(config("app@127.0.9.2")?).await?;

    // `cluster join` from code: b asks a to let it in, and waits for an answer.
    let status = b
        .handle()
        .join_and_wait(a.handle().name(), Duration::from_secs(5))
        .await?;
    println!("b joined: {status}");

    // Gossip carries b to a as well.
    let a_handle = a.handle();
    tokio::time::timeout(Duration::from_secs(5), async {
        while a_handle.num_members() == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await?;
    println!("a sees:   {}", a_handle.status().await?);

    // Leave (b tells the cluster), then stop both.
    b.stop(true, Duration::from_secs(2)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!("after b left, a sees: {}", a_handle.status().await?);
    a.stop(true, Duration::from_secs(2)).await?;
    Ok(())
}
