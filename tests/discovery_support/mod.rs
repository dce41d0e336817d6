//! Real servers for the discovery tests, started and stopped by the tests:
//! dnsmasq (DNS A, AAAA and SRV), etcd, and a small HTTP server that answers
//! as a Kubernetes API server would. Each is killed when its guard drops;
//! every wait is bounded. A missing server binary fails the test with the
//! Debian package to install (scripts/install-deps installs them all).

#![allow(dead_code)]

pub mod dnsmasq;
pub mod etcd;
pub mod kube_api;
pub mod ports;
pub mod tls;

use std::path::PathBuf;

/// The path of `binary`, from `PATH` or the sbin directories; panics with
/// the package to install when it is nowhere.
pub fn require_binary(binary: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(binary);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{binary}` not found: this test needs a real server; install the Debian package \
         `{package}` (apt-get install -y {package}, or run scripts/install-deps as root)"
    );
}
