//! `examples/k8s/sweep-job.yaml`: a Kubernetes Indexed Job whose pods each
//! run one shard of a sweep. The manifest parses, its shard count matches
//! its completions, and its pods' script, run here once per completion
//! index, writes shards that merge into what the unsharded sweep prints.

use std::path::Path;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn manifest() -> Vec<Yaml> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/k8s/sweep-job.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    YamlLoader::load_from_str(&text).unwrap()
}

fn job(docs: &[Yaml]) -> &Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some("Job"))
        .expect("a Job document")
}

fn env<'a>(container: &'a Yaml, name: &str) -> &'a str {
    container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("env {name}"))
}

#[test]
fn the_sweep_job_is_an_indexed_job_with_one_shard_per_completion() {
    let docs = manifest();
    let job = job(&docs);
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let completions = spec["completions"].as_i64().unwrap();
    assert!(completions >= 2);
    assert_eq!(spec["parallelism"].as_i64(), Some(completions));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"));
    let container = &pod["containers"][0];
    assert_eq!(env(container, "SHARDS"), completions.to_string());
    let script = container["args"][0].as_str().unwrap();
    for part in [
        "rollcall-sim sweep",
        "--shard",
        "JOB_COMPLETION_INDEX",
        "--out",
    ] {
        assert!(script.contains(part), "{part} in {script}");
    }
    // The shards write where the results volume is mounted, and that
    // volume is the claim the manifest declares.
    let mount = &container["volumeMounts"][0];
    let at = mount["mountPath"].as_str().unwrap();
    assert!(script.contains(&format!("{at}/")), "{script}");
    let claim = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == mount["name"].as_str())
        .and_then(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .unwrap();
    assert!(docs
        .iter()
        .any(|d| d["kind"].as_str() == Some("PersistentVolumeClaim")
            && d["metadata"]["name"].as_str() == Some(claim)));
}

#[test]
fn the_sweep_jobs_pods_write_shards_that_merge_into_the_unsharded_sweep() {
    let docs = manifest();
    let job = job(&docs);
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let shards = job["spec"]["completions"].as_i64().unwrap();
    let at = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("k8s-sweep-job");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let script = container["args"][0]
        .as_str()
        .unwrap()
        .replace(&format!("{at}/"), &format!("{}/", dir.display()));
    let bin = Path::new(env!("CARGO_BIN_EXE_rollcall-sim"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Few seeds, so the test is quick; the manifest's own count is 2000.
    let seeds = "6";
    for index in 0..shards {
        let status = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("PATH", &path)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("SHARDS", env(container, "SHARDS"))
            .env("ROLLCALL_SIM_SEEDS", seeds)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "index {index}: {status}");
    }
    let files: Vec<_> = (0..shards)
        .map(|i| dir.join(format!("shard-{i}.jsonl")))
        .collect();
    let merged = Command::new(bin)
        .arg("merge")
        .args(&files)
        .output()
        .unwrap();
    let nodes = script
        .split_whitespace()
        .skip_while(|w| *w != "--nodes")
        .nth(1)
        .unwrap();
    let whole = Command::new(bin)
        .args(["sweep", "--nodes", nodes, "--seeds", seeds])
        .env_remove("ROLLCALL_SIM_SEEDS")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&merged.stdout),
        String::from_utf8_lossy(&whole.stdout)
    );
    assert_eq!(merged.status.code(), whole.status.code());
}
