//! The control socket: how `rollcall ctl` talks to a running agent.
//!
//! A Unix socket named `rollcall.sock` in the node's `data_dir`, mode 0600
//! (the data directory is created 0700): only the agent's user can use it, and
//! nothing listens on the network for control. The protocol is one JSON
//! object per line each way:
//!
//! ```text
//! -> {"command":"status"}
//! <- {"ok":{"message":null,"status":{"running_nodes":["rc@127.0.0.1"],"stopped_nodes":[],"roles":{"rc@127.0.0.1":"core"}}}}
//! -> {"command":"join","node":"rc1@127.0.0.1"}
//! <- {"error":{"message":"this node is already in a cluster; leave it first"}}
//! ```
//!
//! A refused command answers with the core's reason: on a replicant,
//! `join` answers "this node is a replicant: replicants join through
//! automatic discovery only". A status whose running nodes include no core
//! node carries `"no_core_running":true`.
//!
//! Requests: `status`, `status_verbose`, `join` (`node`), `leave`,
//! `force_leave` (`node`), `stats` (answered `{"stats":{...}}`, an
//! [`AgentStats`]), and `monitor` (`since_start`), whose answer is a stream
//! of event lines ([`monitor`](super::monitor)).
//!
//! ```text
//! -> {"command":"status_verbose"}
//! <- {"verbose":{"running_nodes":["rc@127.0.0.1"],"stopped_nodes":[],"roles":{...},"members":[{"node":"rc@127.0.0.1","state":"alive","role":"core",...}]}}
//! ```

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::agent::{AgentError, AgentHandle};
use super::stats::AgentStats;
use super::verbose::VerboseStatus;
use crate::core::{NodeName, Status};

/// The socket's file name inside `data_dir`.
pub const SOCKET_FILE: &str = "rollcall.sock";

/// How long `join` waits for a member to answer before calling the node
/// unreachable.
pub const JOIN_WAIT: Duration = Duration::from_secs(5);

/// The most bytes one connection may send (requests are tiny).
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// How long a client waits for the agent's answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// The control socket's path for a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// What `rollcall ctl` asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    /// `cluster status`.
    Status,
    /// `cluster status --verbose`.
    StatusVerbose,
    /// `monitor`: stream the events, after the history if `since_start`.
    Monitor {
        /// Replay the events the agent saw so far first.
        #[serde(default)]
        since_start: bool,
    },
    /// `cluster join NODE`: join the cluster NODE is in.
    Join {
        /// The node to ask, `name@host`.
        node: String,
    },
    /// `cluster leave`.
    Leave,
    /// `cluster force-leave NODE`.
    ForceLeave {
        /// The node to remove, `name@host`.
        node: String,
    },
    /// `stats`: every counter the agent keeps.
    Stats,
}

/// The agent's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Done.
    Ok {
        /// What to tell the operator, if anything.
        message: Option<String>,
        /// The cluster status after the request, if it has one.
        status: Option<Status>,
    },
    /// The answer to `status_verbose`.
    Verbose(VerboseStatus),
    /// Refused or failed; the message is one line for the operator.
    Error {
        /// What went wrong.
        message: String,
    },
    /// The answer to `stats`: the agent's counters.
    Stats(Box<AgentStats>),
}

/// Why the control socket could not be served or reached.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No socket file: no agent runs with this data directory.
    #[error("the agent is not running (no control socket at {0})")]
    NotRunning(PathBuf),
    /// The socket file exists but nothing listens on it.
    #[error("the agent is not running (nothing listens on {0})")]
    Refused(PathBuf),
    /// Another agent already serves this data directory.
    #[error("another agent is running with this data directory (it answers on {0})")]
    AlreadyRunning(PathBuf),
    /// The agent did not answer in time.
    #[error("the agent did not answer within {} s", CLIENT_TIMEOUT.as_secs())]
    Timeout,
    /// The agent's answer was not understood.
    #[error("unexpected answer from the agent: {0}")]
    Protocol(String),
    /// The agent refused the request; the message says why.
    #[error("{0}")]
    Agent(String),
    /// Some other I/O error on the socket or the data directory.
    #[error("control socket {path}: {error}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
}

/// A listening control socket, removed when dropped.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl ControlServer {
    /// Creates `data_dir` (mode 0700) if missing and serves the agent behind
    /// `handle` on `data_dir/rollcall.sock` (mode 0600). A stale socket file
    /// is replaced; a live one is an error.
    pub async fn start(data_dir: &Path, handle: AgentHandle) -> Result<Self, ControlError> {
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |error| ControlError::Io { path, error }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(io_err(data_dir))?;
        let path = socket_path(data_dir);
        match UnixStream::connect(&path).await {
            Ok(_) => return Err(ControlError::AlreadyRunning(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => std::fs::remove_file(&path).map_err(io_err(&path))?,
        }
        // Bind inside a private directory, restrict, then move into place:
        // the socket is never reachable with wider permissions.
        let private = data_dir.join(format!(".control-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&private);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&private)
            .map_err(io_err(&private))?;
        let staged = private.join(SOCKET_FILE);
        let bound = (|| {
            let listener = UnixListener::bind(&staged)?;
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&staged, &path)?;
            Ok(listener)
        })();
        let _ = std::fs::remove_dir_all(&private);
        let listener = bound.map_err(io_err(&path))?;
        let task = tokio::spawn(serve(listener, handle));
        Ok(Self { path, task })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve(listener: UnixListener, handle: AgentHandle) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, handle.clone()));
            }
            Err(e) => {
                tracing::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(stream: UnixStream, handle: AgentHandle) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(MAX_REQUEST_BYTES)).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let response = match parse_request(&line) {
            Ok(Request::Monitor { since_start }) => match handle.monitor(since_start).await {
                // The rest of the connection is the event stream.
                Ok(stream) => {
                    super::monitor::serve(stream, since_start, lines, &mut write).await;
                    return;
                }
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            },
            Ok(request) => answer(&handle, request).await,
            Err(refusal) => refusal,
        };
        let mut out = serde_json::to_vec(&response).unwrap_or_default();
        out.push(b'\n');
        if write.write_all(&out).await.is_err() {
            break;
        }
    }
}

/// Reads one request line as the agent does: one JSON object, tagged by
/// `command`. A line that is not a request gives the error the agent
/// answers with (`bad request: ...`); nothing else is done with it.
pub fn parse_request(line: &str) -> Result<Request, Response> {
    serde_json::from_str::<Request>(line).map_err(|e| Response::Error {
        message: format!("bad request: {e}"),
    })
}

/// Carries out one request.
pub async fn answer(handle: &AgentHandle, request: Request) -> Response {
    if request == Request::Stats {
        return stats(handle).await;
    }
    if request == Request::StatusVerbose {
        return verbose(handle).await;
    }
    match run(handle, request).await {
        Ok((message, status)) => Response::Ok {
            message: message.map(str::to_owned),
            status,
        },
        Err(message) => Response::Error { message },
    }
}

async fn verbose(handle: &AgentHandle) -> Response {
    match handle.verbose_status().await {
        Ok(v) => Response::Verbose(v),
        Err(e) => Response::Error {
            message: e.to_string(),
        },
    }
}

async fn run(
    handle: &AgentHandle,
    request: Request,
) -> Result<(Option<&'static str>, Option<Status>), String> {
    // `CommandError::AlreadyInCluster` reads "this node is already in a
    // cluster; leave it first".
    let text = |e: AgentError| e.to_string();
    let name =
        |node: &str| NodeName::parse(node).map_err(|e| format!("bad node name {node:?}: {e}"));
    match request {
        Request::StatusVerbose | Request::Monitor { .. } => {
            Err("this request has its own answer: status_verbose, or a stream for monitor".into())
        }
        Request::Status => Ok((None, Some(handle.status().await.map_err(text)?))),
        Request::Join { node } => {
            let node = name(&node)?;
            let status = handle.join_and_wait(&node, JOIN_WAIT).await.map_err(text)?;
            Ok((Some("Join the cluster successfully."), Some(status)))
        }
        Request::Leave => {
            handle.leave().await.map_err(text)?;
            Ok((Some("Leave the cluster successfully."), None))
        }
        Request::ForceLeave { node } => {
            handle.force_leave(name(&node)?).await.map_err(text)?;
            Ok((Some("Remove the node from cluster successfully."), None))
        }
        // Answered by `stats`, before `run`.
        Request::Stats => Ok((None, None)),
    }
}

/// `stats`: one snapshot of the agent's counters.
async fn stats(handle: &AgentHandle) -> Response {
    match handle.stats().await {
        Ok(stats) => Response::Stats(Box::new(stats)),
        Err(e) => Response::Error {
            message: e.to_string(),
        },
    }
}

/// Sends one request to the agent whose control socket is at `path` and
/// returns its answer.
pub async fn request(path: &Path, request: &Request) -> Result<Response, ControlError> {
    let io_err = |error| ControlError::Io {
        path: path.to_owned(),
        error,
    };
    let stream = connect(path).await?;
    let exchange = async {
        let (read, mut write) = stream.into_split();
        let mut line =
            serde_json::to_vec(request).map_err(|e| ControlError::Protocol(e.to_string()))?;
        line.push(b'\n');
        write.write_all(&line).await.map_err(io_err)?;
        let mut answer = String::new();
        BufReader::new(read.take(MAX_REQUEST_BYTES * 16))
            .read_line(&mut answer)
            .await
            .map_err(io_err)?;
        if answer.is_empty() {
            return Err(ControlError::Protocol(
                "the agent closed the connection".into(),
            ));
        }
        serde_json::from_str(&answer).map_err(|e| ControlError::Protocol(e.to_string()))
    };
    tokio::time::timeout(CLIENT_TIMEOUT, exchange)
        .await
        .map_err(|_| ControlError::Timeout)?
}

/// Follows the events of the agent whose control socket is at `path`:
/// hands each line to `each` as the agent sent it (one JSON object), until
/// the agent stops (`Ok`) or `each` fails (its error, as
/// [`ControlError::Io`]). An agent that cannot serve the monitor answers
/// with an error line, returned as [`ControlError::Agent`].
pub async fn monitor(
    path: &Path,
    since_start: bool,
    mut each: impl FnMut(&str) -> std::io::Result<()>,
) -> Result<(), ControlError> {
    let stream = connect(path).await?;
    let io_err = |error| ControlError::Io {
        path: path.to_owned(),
        error,
    };
    let (read, mut write) = stream.into_split();
    super::monitor::send(&mut write, &Request::Monitor { since_start })
        .await
        .map_err(io_err)?;
    let mut lines = BufReader::new(read).lines();
    let mut first = true;
    while let Some(line) = lines.next_line().await.map_err(io_err)? {
        if first {
            first = false;
            if let Ok(Response::Error { message }) = serde_json::from_str::<Response>(&line) {
                return Err(ControlError::Agent(message));
            }
        }
        each(&line).map_err(io_err)?;
    }
    // Keep the write half open until the end: closing it tells the agent
    // this monitor has gone.
    drop(write);
    Ok(())
}

/// Connects to the control socket at `path`, telling a missing agent from
/// other failures.
pub(crate) async fn connect(path: &Path) -> Result<UnixStream, ControlError> {
    match UnixStream::connect(path).await {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(ControlError::NotRunning(path.to_owned()))
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(ControlError::Refused(path.to_owned()))
        }
        Err(error) => Err(ControlError::Io {
            path: path.to_owned(),
            error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_are_one_line_of_json_each() {
        let r = Request::ForceLeave {
            node: "rc@127.0.0.1".into(),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"command":"force_leave","node":"rc@127.0.0.1"}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
        let e = Response::Error {
            message: "no".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"error":{"message":"no"}}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::Stats).unwrap(),
            r#"{"command":"stats"}"#
        );
        let s = Response::Stats(Box::default());
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.starts_with(r#"{"stats":{"node":{"#), "{text}");
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), s);
    }

    #[test]
    fn verbose_status_and_monitor_requests_keep_the_one_line_protocol() {
        let text = serde_json::to_string(&Request::StatusVerbose).unwrap();
        assert_eq!(text, r#"{"command":"status_verbose"}"#);
        let monitor: Request = serde_json::from_str(r#"{"command":"monitor"}"#).unwrap();
        assert_eq!(monitor, Request::Monitor { since_start: false });
        let text = serde_json::to_string(&Request::Monitor { since_start: true }).unwrap();
        assert_eq!(text, r#"{"command":"monitor","since_start":true}"#);
    }

    #[test]
    fn a_line_that_is_not_a_request_gets_the_bad_request_answer() {
        assert_eq!(
            parse_request(r#"{"command":"leave"}"#).unwrap(),
            Request::Leave
        );
        for line in ["", "{", r#"{"command":"reboot"}"#, r#"{"command":"join"}"#] {
            match parse_request(line) {
                Err(Response::Error { message }) => {
                    assert!(message.starts_with("bad request: "), "{message}")
                }
                other => panic!("{line:?} gave {other:?}"),
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_socket_says_the_agent_is_not_running() {
        let dir = std::env::temp_dir().join(format!("rollcall-ctl-missing-{}", std::process::id()));
        let e = request(&socket_path(&dir), &Request::Status)
            .await
            .unwrap_err();
        assert!(matches!(e, ControlError::NotRunning(_)));
        assert!(e.to_string().starts_with("the agent is not running"));
    }
}
