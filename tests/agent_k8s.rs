//! Agents that find each other through a Service's EndpointSlices, read
//! from a local server that answers in Kubernetes JSON: four form a
//! cluster, a fifth comes in when its endpoint is added. A k8s config
//! without a service name is refused at start.
//!
//! Addresses 127.0.12.x belong to this file.
#![cfg(all(feature = "cli", feature = "k8s"))]

mod common;
mod discovery_support;

use std::time::Duration;

use common::{assert_all_see, wait_until, AgentProc, Spec, TempDir};
use discovery_support::kube_api::{pod, KubeApi, Mode};

fn spec(name: &str, api: &KubeApi) -> Spec {
    Spec {
        strategy: "k8s",
        extra: format!(
            "[cluster.k8s]\napiserver = \"{}\"\nservice_name = \"rollcall\"\n\
             namespace = \"prod\"\naddress_type = \"ip\"\n",
            api.url()
        ),
        env: common::fast_discovery(),
        ..Spec::manual(name)
    }
}

#[test]
fn four_agents_cluster_through_endpoint_slices_and_a_fifth_joins_when_its_endpoint_appears() {
    let dir = TempDir::new("agent_k8s");
    let ips: Vec<String> = (2..=5).map(|i| format!("127.0.12.{i}")).collect();
    let pods = ips.iter().enumerate().map(|(n, ip)| pod(ip, n)).collect();
    let api = KubeApi::start("prod", "rollcall", Mode::Slices, pods);
    let mut nodes: Vec<String> = ips.iter().map(|i| format!("rc@{i}")).collect();
    let mut agents: Vec<AgentProc> = nodes
        .iter()
        .map(|n| AgentProc::start(dir.path(), &spec(n, &api)))
        .collect();
    assert_all_see(
        &agents,
        &nodes,
        Duration::from_secs(20),
        "the four agents did not find each other through EndpointSlices",
        || format!("requests: {:?}", api.requests()),
    );

    api.add_pod(pod("127.0.12.6", 4));
    nodes.push("rc@127.0.12.6".to_owned());
    agents.push(AgentProc::start(dir.path(), &spec("rc@127.0.12.6", &api)));
    assert_all_see(
        &agents,
        &nodes,
        Duration::from_secs(20),
        "the fifth node did not come in",
        String::new,
    );
}

#[test]
fn an_agent_without_rbac_keeps_running_and_logs_what_is_missing() {
    let dir = TempDir::new("agent_k8s_403");
    let api = KubeApi::start("prod", "rollcall", Mode::Forbidden, vec![]);
    let agent = AgentProc::start(dir.path(), &spec("rc@127.0.12.20", &api));
    let logged = wait_until(Duration::from_secs(10), || {
        agent
            .log()
            .contains("get and list on endpoints and endpointslices")
    });
    assert!(logged, "{}", agent.log());
    assert!(
        agent.status().is_some(),
        "the agent stopped\n{}",
        agent.log()
    );
}

#[test]
fn a_k8s_config_without_a_service_name_is_refused_at_start_naming_the_key() {
    let dir = TempDir::new("agent_k8s_bad");
    let bad = Spec {
        strategy: "k8s",
        extra: "[cluster.k8s]\nnamespace = \"prod\"\n".to_owned(),
        ..Spec::manual("rc@127.0.12.30")
    };
    common::assert_refused(dir.path(), &bad, "cluster.k8s.service_name");
}
