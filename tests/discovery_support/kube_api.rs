//! A small HTTP server that answers as a Kubernetes API server would for the
//! two requests the k8s strategy makes: a Service's EndpointSlices
//! (`discovery.k8s.io/v1`) and its Endpoints (`v1`), in real Kubernetes JSON,
//! including the 404 and 403 `Status` objects. The pods it lists can change
//! while a test runs.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// EndpointSlices and Endpoints both served (a current cluster).
    Slices,
    /// No EndpointSlice API: `404 page not found` for it, Endpoints served.
    EndpointsOnly,
    /// The service account lacks RBAC: a 403 `Status` for everything.
    Forbidden,
    /// No such Service: empty EndpointSlice lists, a 404 `Status` for the
    /// Endpoints.
    NoService,
}

/// One pod behind the Service.
#[derive(Clone, Debug)]
pub struct Pod {
    /// Its IP.
    pub ip: IpAddr,
    /// Its hostname (StatefulSet pods: `rollcall-0`, ...).
    pub hostname: String,
    /// Whether it is ready.
    pub ready: bool,
}

struct State {
    mode: Mode,
    pods: Vec<Pod>,
    requests: Vec<String>,
    authorizations: Vec<String>,
}

/// The running server; stopped when dropped.
pub struct KubeApi {
    addr: SocketAddr,
    namespace: String,
    service: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl KubeApi {
    /// Serves Service `service` in `namespace` with `pods`, answering as `mode`.
    pub fn start(namespace: &str, service: &str, mode: Mode, pods: Vec<Pod>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake API server");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            mode,
            pods,
            requests: Vec::new(),
            authorizations: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            let (ns, svc) = (namespace.to_owned(), service.to_owned());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream, &state, &ns, &svc),
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Self {
            addr,
            namespace: namespace.to_owned(),
            service: service.to_owned(),
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `cluster.k8s.apiserver`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a pod behind the Service.
    pub fn add_pod(&self, pod: Pod) {
        self.state.lock().unwrap().pods.push(pod);
    }

    /// Changes what the server answers.
    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Every request line seen so far (`GET /api/v1/... HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every `Authorization` header seen so far.
    pub fn authorizations(&self) -> Vec<String> {
        self.state.lock().unwrap().authorizations.clone()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A pod at `ip`, ready, with hostname `rollcall-N`.
pub fn pod(ip: &str, n: usize) -> Pod {
    Pod {
        ip: ip.parse().expect("an IP"),
        hostname: format!("rollcall-{n}"),
        ready: true,
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, ns: &str, svc: &str) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // The headers; a GET has no body.
    let mut authorization = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("authorization") {
                        authorization = Some(v.trim().to_owned());
                    }
                }
            }
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let (code, body, json) = {
        let mut s = state.lock().unwrap();
        s.requests.push(request_line.trim().to_owned());
        s.authorizations.extend(authorization);
        answer(&s, &path, ns, svc)
    };
    let reason = match code {
        200 => "OK",
        403 => "Forbidden",
        _ => "Not Found",
    };
    let kind = if json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = &stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

/// (status code, body, whether the body is JSON) for `path`.
fn answer(s: &State, path: &str, ns: &str, svc: &str) -> (u16, String, bool) {
    let slices = format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices");
    let endpoints = format!("/api/v1/namespaces/{ns}/endpoints/{svc}");
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    if route == slices {
        return match s.mode {
            Mode::Forbidden => (
                403,
                forbidden(ns, "endpointslices", "discovery.k8s.io"),
                true,
            ),
            Mode::EndpointsOnly => (404, "404 page not found".to_owned(), false),
            Mode::NoService => (200, slice_list(ns, svc, &[]), true),
            Mode::Slices => {
                // Only the Service's own slices match its label selector.
                let selector = format!("kubernetes.io%2Fservice-name%3D{svc}");
                let pods: &[Pod] = if query.contains(&selector) {
                    &s.pods
                } else {
                    &[]
                };
                (200, slice_list(ns, svc, pods), true)
            }
        };
    }
    if route == endpoints {
        return match s.mode {
            Mode::Forbidden => (403, forbidden(ns, "endpoints", ""), true),
            Mode::NoService => (404, not_found(svc), true),
            Mode::Slices | Mode::EndpointsOnly => (200, endpoints_object(ns, svc, &s.pods), true),
        };
    }
    (404, "404 page not found".to_owned(), false)
}

fn slice_list(ns: &str, svc: &str, pods: &[Pod]) -> String {
    let endpoints: Vec<serde_json::Value> = pods
        .iter()
        .map(|p| {
            serde_json::json!({
                "addresses": [p.ip.to_string()],
                "conditions": {"ready": p.ready, "serving": p.ready, "terminating": false},
                "hostname": p.hostname,
                "targetRef": {"kind": "Pod", "namespace": ns, "name": p.hostname,
                              "uid": "3b5d7c1e-0000-4000-8000-000000000000"},
                "nodeName": "worker-1"
            })
        })
        .collect();
    serde_json::json!({
        "kind": "EndpointSliceList",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"resourceVersion": "4711"},
        "items": [{
            "metadata": {
                "name": format!("{svc}-x7k2p"),
                "generateName": format!("{svc}-"),
                "namespace": ns,
                "uid": "9f2c1a4e-0000-4000-8000-000000000000",
                "resourceVersion": "4711",
                "labels": {
                    "kubernetes.io/service-name": svc,
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                    "service.kubernetes.io/headless": ""
                },
                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc,
                    "uid": "1c2d3e4f-0000-4000-8000-000000000000",
                    "controller": true, "blockOwnerDeletion": true}]
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "gossip", "protocol": "UDP", "port": 4370}]
        }]
    })
    .to_string()
}

fn endpoints_object(ns: &str, svc: &str, pods: &[Pod]) -> String {
    let to_address = |p: &Pod| {
        serde_json::json!({
            "ip": p.ip.to_string(),
            "hostname": p.hostname,
            "nodeName": "worker-1",
            "targetRef": {"kind": "Pod", "namespace": ns, "name": p.hostname,
                          "uid": "3b5d7c1e-0000-4000-8000-000000000000"}
        })
    };
    let ready: Vec<_> = pods.iter().filter(|p| p.ready).map(to_address).collect();
    let not_ready: Vec<_> = pods.iter().filter(|p| !p.ready).map(to_address).collect();
    serde_json::json!({
        "kind": "Endpoints",
        "apiVersion": "v1",
        "metadata": {"name": svc, "namespace": ns, "resourceVersion": "4711",
                     "labels": {"app": svc, "service.kubernetes.io/headless": ""}},
        "subsets": [{
            "addresses": ready,
            "notReadyAddresses": not_ready,
            "ports": [{"name": "gossip", "port": 4370, "protocol": "UDP"}]
        }]
    })
    .to_string()
}

fn not_found(svc: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure",
        "message": format!("endpoints \"{svc}\" not found"),
        "reason": "NotFound",
        "details": {"name": svc, "kind": "endpoints"},
        "code": 404
    })
    .to_string()
}

fn forbidden(ns: &str, resource: &str, group: &str) -> String {
    let full = if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    };
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure",
        "message": format!(
            "{full} is forbidden: User \"system:serviceaccount:{ns}:default\" cannot list \
             resource \"{resource}\" in API group \"{group}\" in the namespace \"{ns}\""
        ),
        "reason": "Forbidden",
        "details": {"group": group, "kind": resource},
        "code": 403
    })
    .to_string()
}
