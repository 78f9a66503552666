//! Live control of a running daemon: the control socket and `ferroswitch ctl`, its client.
//!
//! The socket is a Unix stream socket (`[control] socket`; default
//! `$RUNTIME_DIRECTORY/ctl.sock` when systemd sets RUNTIME_DIRECTORY, else `ctl.sock` beside the
//! config file), mode 0660, removed on a clean exit; a stale file left by a killed daemon is
//! replaced at start, a live daemon's socket never is.
//!
//! Protocol: line-delimited JSON. The client writes one request object per line, the daemon
//! answers each with one object on one line, in order; the connection may carry many.
//!
//! ```text
//! {"cmd":"status"}
//! {"cmd":"registrations"}                  {"cmd":"registrations","user":"alice"}
//! {"cmd":"calls"}
//! {"cmd":"hangup","call":3}                {"cmd":"hangup","call":3,"cause":"USER_BUSY"}
//! {"cmd":"unregister","user":"alice"}      {"cmd":"unregister","user":"alice","contact":"sip:…"}
//! {"cmd":"bans"}                           {"cmd":"unban","addr":"192.0.2.7"}
//! {"cmd":"reload"}
//! {"cmd":"drain"}                          {"cmd":"resume"}
//! {"cmd":"trace","call":"3"}               {"cmd":"trace","call":"<a- or b-leg Call-ID>"}
//! → {"ok":true,"result":…}  or  {"ok":false,"error":"no call 3 (see `ferroswitch ctl calls`)"}
//! ```
//! so `echo '{"cmd":"calls"}' | socat - UNIX-CONNECT:/run/ferroswitch/ctl.sock` scripts it.
//!
//! `trace` answers with the SIP the daemon kept of a recent call (`[trace]`; both legs, and
//! the a-leg's messages from before the call existed: the first INVITE, its 407, the ACK):
//! `{"call":3,"a_call_id":…,"b_call_ids":[…],"status":486,"dropped":0,"messages":[{"time_us":…,
//! "dir":"in"|"out","leg":"a"|"b","transport":"UDP","remote":"ip:port","local":…,"call_id":…,
//! "text":"INVITE sip:…"}…]}`; `ferroswitch ctl trace` draws it as a ladder (`crate::ladder`),
//! `--full` with each message, `--pcap FILE` writes it as a pcap file.
//!
//! The server never touches the engine: each request goes over a channel to the driver task
//! (`app::drive`), which owns the engine, calls it (`engine::control`) and answers; the
//! engine's transmits are then drained as after any other input. A reload reads the users
//! files on a blocking thread, never in the driver. Bounded: 16 connections, 64 KiB per
//! request line, 30 s of silence closes a connection.

use crate::app::CdrWriter;
use crate::cdr::HangupCause;
use crate::config::{Config, Users};
use crate::engine::{ControlError, Engine, EngineSnapshot};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;
const MAX_CONNECTIONS: usize = 16;
const IDLE: Duration = Duration::from_secs(30);

/// One request, as sent on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum CtlRequest {
    Status,
    Registrations {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    Calls,
    Hangup {
        call: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
    },
    Unregister {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact: Option<String>,
    },
    Bans,
    Unban {
        addr: String,
    },
    /// Trunks: where each is, its registration with the provider, up or down.
    Gateways,
    Reload,
    /// Stop taking new calls (503 to INVITE and OPTIONS); calls in progress go on.
    Drain,
    /// Take new calls again.
    Resume,
    /// The SIP kept of a recent call: our call id or a leg's Call-ID.
    Trace {
        call: String,
    },
}

/// What the driver is asked (`app::drive` answers).
pub(crate) enum DriverRequest {
    Query(CtlRequest, oneshot::Sender<Result<Value, String>>),
    /// A reload read from disk: put it in force.
    Reload(Box<Reloaded>, oneshot::Sender<Result<Value, String>>),
    Snapshot(oneshot::Sender<EngineSnapshot>),
}

/// Users read again and the CDR file opened again, off the driver.
pub(crate) struct Reloaded {
    pub users: Users,
    pub cdr: Option<CdrWriter>,
    /// The dialplan read again and validated against the new users.
    pub dialplan: Option<crate::routing::Dialplan>,
}

/// Handle on the running daemon for the control server, the metrics exporter and SIGHUP.
#[derive(Clone)]
pub struct ControlHandle {
    tx: mpsc::Sender<DriverRequest>,
    config: Arc<Config>,
}

impl ControlHandle {
    pub(crate) fn new(tx: mpsc::Sender<DriverRequest>, config: Arc<Config>) -> ControlHandle {
        ControlHandle { tx, config }
    }

    /// Carries out one request; the `result` or the one-line error.
    pub async fn request(&self, req: CtlRequest) -> Result<Value, String> {
        if req == CtlRequest::Reload {
            return self.reload().await;
        }
        let (tx, rx) = oneshot::channel();
        self.send(DriverRequest::Query(req, tx)).await?;
        rx.await.map_err(|_| "the daemon is stopping".to_string())?
    }

    /// Re-reads the users directory and reopens the CDR file (SIGHUP, `ctl reload`). A users
    /// file with an error keeps the old users in force; the error (file:line: key: what) is
    /// logged and returned.
    pub async fn reload(&self) -> Result<Value, String> {
        let config = self.config.clone();
        let read = tokio::task::spawn_blocking(move || {
            // The dialplan is checked against the users as they will be: a rule naming a
            // user the new files dropped refuses the whole reload.
            let users = config.reload_users().and_then(|users| {
                let mut next = (*config).clone();
                next.users = users;
                let dialplan = next.load_dialplan()?;
                Ok((next.users, dialplan))
            });
            let cdr = config.calls.cdr_file.as_deref().map(CdrWriter::open);
            (users, cdr)
        })
        .await
        .map_err(|e| format!("reload failed: {e}"))?;
        let (users, cdr) = read;
        let (users, dialplan) = match users {
            Ok(u) => u,
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!("reload: {e}");
                }
                tracing::error!("reload: the users files or the dialplan have errors; the old users stay in force (and the old dialplan)");
                let first = errors.0.first().map(|e| e.to_string()).unwrap_or_default();
                let more = match errors.0.len() {
                    0 | 1 => String::new(),
                    n => format!(" (and {} more, see the log)", n - 1),
                };
                return Err(format!("reload refused, old users kept: {first}{more}"));
            }
        };
        let cdr = match cdr {
            Some(Ok(w)) => Some(w),
            Some(Err(e)) => {
                tracing::error!(
                    "reload: cannot reopen the CDR file: {e}; writing on to the old one"
                );
                None
            }
            None => None,
        };
        let (tx, rx) = oneshot::channel();
        let reloaded = Box::new(Reloaded {
            users,
            cdr,
            dialplan: Some(dialplan),
        });
        self.send(DriverRequest::Reload(reloaded, tx)).await?;
        rx.await.map_err(|_| "the daemon is stopping".to_string())?
    }

    /// Every counter now (`None` when the driver has stopped).
    pub async fn snapshot(&self) -> Option<EngineSnapshot> {
        let (tx, rx) = oneshot::channel();
        self.send(DriverRequest::Snapshot(tx)).await.ok()?;
        rx.await.ok()
    }

    async fn send(&self, req: DriverRequest) -> Result<(), String> {
        self.tx
            .send(req)
            .await
            .map_err(|_| "the daemon is stopping".to_string())
    }
}

/// Calls started over the last minute, for `status`: sampled by the driver at most once a
/// second (`sample`), read as a rate (`per_second`).
#[derive(Debug, Default)]
pub(crate) struct CallRate {
    samples: VecDeque<(Instant, u64)>,
}

impl CallRate {
    const WINDOW: Duration = Duration::from_secs(60);

    pub fn sample(&mut self, now: Instant, started: u64) {
        if self
            .samples
            .back()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) < Duration::from_secs(1))
        {
            return;
        }
        self.samples.push_back((now, started));
        // Keep one sample at least a window old as the baseline.
        while self.samples.len() > 2
            && now.saturating_duration_since(self.samples[1].0) >= Self::WINDOW
        {
            self.samples.pop_front();
        }
    }

    pub fn per_second(&self, now: Instant, started: u64) -> f64 {
        let Some((t, n)) = self.samples.front() else {
            return 0.0;
        };
        let secs = now
            .saturating_duration_since(*t)
            .min(Self::WINDOW)
            .as_secs_f64();
        if secs < 1.0 {
            return 0.0;
        }
        started.saturating_sub(*n) as f64 / secs
    }
}

/// What the driver knows besides the engine, for `status`.
pub(crate) struct DriverInfo<'a> {
    pub started: Instant,
    pub rate: &'a CallRate,
}

/// Answers one query with the engine (in the driver task).
pub(crate) fn answer(
    engine: &mut Engine,
    info: &DriverInfo<'_>,
    now: Instant,
    wall: SystemTime,
    req: CtlRequest,
) -> Result<Value, String> {
    let err = |e: ControlError| e.to_string();
    match req {
        CtlRequest::Status => {
            let snap = engine.snapshot();
            let started = snap.calls.started;
            Ok(json!({
                "version": env!("CARGO_PKG_VERSION"),
                "node": engine.node_id(),
                "uptime_secs": now.saturating_duration_since(info.started).as_secs(),
                "calls_up": snap.calls_up,
                "draining": snap.draining,
                "media_sessions": snap.engine.media_sessions,
                "registrations": snap.registrations.1,
                "registered_aors": snap.registrations.0,
                "store_up": snap.store_up,
                "calls_per_second": (info.rate.per_second(now, started) * 100.0).round() / 100.0,
                "calls_started": started,
                "calls_ended": snap.calls.ended_total(),
                "bans": engine.ban_list(now).len(),
                "users": engine.users().len(),
            }))
        }
        CtlRequest::Registrations { user } => {
            let regs = engine.registrations(now, user.as_deref());
            Ok(Value::Array(
                regs.into_iter()
                    .map(|r| {
                        json!({
                            "user": r.user, "aor": r.aor, "contact": r.contact,
                            "source": r.source.to_string(), "transport": r.transport,
                            "expires_in": r.expires_in, "user_agent": r.user_agent, "nat": r.nat,
                            "path": r.path,
                        })
                    })
                    .collect(),
            ))
        }
        CtlRequest::Calls => Ok(Value::Array(
            engine
                .calls(wall)
                .into_iter()
                .map(|c| {
                    json!({
                        "id": c.id, "caller": c.caller, "callee": c.callee, "state": c.state,
                        "duration_secs": c.duration.as_secs(),
                        "start": crate::clock::rfc3339(c.start),
                        "answer": c.answer.map(crate::clock::rfc3339),
                        "a_call_id": c.a_call_id, "b_call_ids": c.b_call_ids,
                    })
                })
                .collect(),
        )),
        CtlRequest::Hangup { call, cause } => {
            let cause = match cause.as_deref() {
                None => HangupCause::NormalClearing,
                Some(c) => HangupCause::parse(c).ok_or_else(|| {
                    format!("unknown cause {c:?} (a Q.850 name like NORMAL_CLEARING, or its number like 16)")
                })?,
            };
            engine.hang_up(now, wall, call, cause).map_err(err)?;
            Ok(json!({"call": call, "cause": cause.name(), "code": cause.code()}))
        }
        CtlRequest::Unregister { user, contact } => {
            let removed = engine
                .unregister(now, &user, contact.as_deref())
                .map_err(err)?;
            Ok(json!({"user": user, "removed": removed}))
        }
        CtlRequest::Bans => Ok(Value::Array(
            engine
                .ban_list(now)
                .into_iter()
                .map(|(ip, left)| json!({"addr": ip.to_string(), "remaining_secs": left.as_secs()}))
                .collect(),
        )),
        CtlRequest::Gateways => Ok(Value::Array(
            engine
                .gateways(now)
                .into_iter()
                .map(|g| {
                    json!({
                        "name": g.name,
                        "target": g.target.map(|a| a.to_string()),
                        "registration": g.registration,
                        "expires_in": g.expires_in,
                        "up": g.up,
                    })
                })
                .collect(),
        )),
        CtlRequest::Unban { addr } => {
            let ip: std::net::IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| format!("{addr:?} is not an IP address"))?;
            engine.unban(now, ip).map_err(err)?;
            Ok(json!({"addr": ip.to_string()}))
        }
        CtlRequest::Drain => {
            let changed = engine.drain();
            Ok(json!({"draining": true, "changed": changed, "calls_up": engine.active_calls()}))
        }
        CtlRequest::Resume => {
            if !engine.resume() {
                return Err("the daemon is shutting down: it cannot take calls again".into());
            }
            Ok(json!({"draining": false, "calls_up": engine.active_calls()}))
        }
        CtlRequest::Trace { call } => Ok(crate::ladder::trace_json(
            engine.call_trace(&call).map_err(err)?,
        )),
        // Read from disk by `ControlHandle::reload`, never here.
        CtlRequest::Reload => Err("reload goes through ControlHandle::reload".into()),
    }
}

/// Puts a reload in force (in the driver task); the old CDR file is closed when replaced.
pub(crate) fn apply_reload(
    engine: &mut Engine,
    now: Instant,
    reloaded: Reloaded,
    cdr: &mut Option<CdrWriter>,
) -> Value {
    let users = reloaded.users.len();
    let removed = engine.replace_users(now, reloaded.users);
    if let Some(d) = reloaded.dialplan {
        engine.set_dialplan(std::sync::Arc::new(d));
    }
    let reopened = reloaded.cdr.is_some();
    if let Some(w) = reloaded.cdr {
        *cdr = Some(w);
    }
    tracing::info!(
        users,
        removed_bindings = removed,
        cdr_reopened = reopened,
        "reloaded: users files read again"
    );
    json!({"users": users, "removed_bindings": removed, "cdr_reopened": reopened})
}

// ---- the socket ---------------------------------------------------------------------------

/// Where the daemon puts its socket: `configured`, else `$RUNTIME_DIRECTORY/ctl.sock` when
/// systemd set RUNTIME_DIRECTORY, else `ctl.sock` beside the config file.
pub fn socket_path(configured: Option<&Path>, config_file: &Path) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    if let Some(dir) = runtime_directory() {
        return dir.join("ctl.sock");
    }
    config_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("ctl.sock")
}

fn runtime_directory() -> Option<PathBuf> {
    let v = std::env::var_os("RUNTIME_DIRECTORY")?;
    // systemd lists several directories separated by ':' when the unit names several.
    let first = v.to_str()?.split(':').next()?.to_string();
    (!first.is_empty()).then(|| PathBuf::from(first))
}

/// The listening control socket; the file is removed when this drops (a clean exit).
pub struct ControlServer {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl ControlServer {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Binds `path` (mode 0660) and serves it. A socket file nobody answers on (a killed
    /// daemon's) is replaced; one a live daemon answers on is an error.
    #[cfg(unix)]
    pub fn start(path: &Path, handle: ControlHandle) -> std::io::Result<ControlServer> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{}: another daemon is answering on it", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = tokio::net::UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        let task = tokio::spawn(serve(listener, handle));
        Ok(ControlServer {
            path: path.to_path_buf(),
            task,
        })
    }
}

#[cfg(not(unix))]
impl ControlServer {
    pub fn start(_path: &Path, _handle: ControlHandle) -> std::io::Result<ControlServer> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "the control socket needs Unix sockets",
        ))
    }
}

#[cfg(unix)]
async fn serve(listener: tokio::net::UnixListener, handle: ControlHandle) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("control socket: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!("control socket: {MAX_CONNECTIONS} connections open, one refused");
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            connection(stream, handle).await;
            drop(permit);
        });
    }
}

#[cfg(unix)]
async fn connection(stream: tokio::net::UnixStream, handle: ControlHandle) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = tokio::time::timeout(
            IDLE,
            (&mut lines)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf),
        )
        .await;
        let n = match n {
            Ok(Ok(n)) => n,
            _ => return,
        };
        if n == 0 {
            return;
        }
        let reply = if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
            let r = json!({"ok": false, "error": format!("request longer than {MAX_LINE} bytes")});
            let _ = write.write_all(format!("{r}\n").as_bytes()).await;
            return;
        } else {
            match serde_json::from_slice::<CtlRequest>(&buf) {
                Ok(req) => match handle.request(req).await {
                    Ok(result) => json!({"ok": true, "result": result}),
                    Err(e) => json!({"ok": false, "error": e}),
                },
                Err(e) => json!({"ok": false, "error": format!("bad request: {e}")}),
            }
        };
        if write
            .write_all(format!("{reply}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

// ---- the client: `ferroswitch ctl` ---------------------------------------------------------

/// The socket `ferroswitch ctl` talks to: `--socket`, else `[control] socket` of the config
/// file (read alone: the users files are not needed, nor readable by every operator), else
/// the daemon's default (`$RUNTIME_DIRECTORY`, then `ctl.sock` beside the config file, then
/// `/run/ferroswitch/ctl.sock` when that exists).
pub fn client_socket_path(socket: Option<&Path>, config_file: &Path) -> PathBuf {
    if let Some(s) = socket {
        return s.to_path_buf();
    }
    let configured = std::fs::read_to_string(config_file)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| {
            t.get("control")?
                .get("socket")?
                .as_str()
                .map(|s| s.to_string())
        })
        .map(|s| config_file.parent().unwrap_or(Path::new(".")).join(s));
    if configured.is_some() || runtime_directory().is_some() {
        return socket_path(configured.as_deref(), config_file);
    }
    let beside = socket_path(None, config_file);
    let systemd = Path::new("/run/ferroswitch/ctl.sock");
    if !beside.exists() && systemd.exists() {
        return systemd.to_path_buf();
    }
    beside
}

/// Sends one request and reads its answer: `Ok(result)`, or the one-line error (the
/// daemon's, or why it could not be asked).
#[cfg(unix)]
pub fn call(path: &Path, req: &CtlRequest) -> Result<Value, String> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => format!(
            "cannot reach the daemon at {}: is ferroswitch running? ({e})",
            path.display()
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot reach the daemon at {}: permission denied (run as the daemon's user or group)",
            path.display()
        ),
        _ => format!("cannot reach the daemon at {}: {e}", path.display()),
    })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let line = serde_json::to_string(req).map_err(|e| e.to_string())? + "\n";
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("sending to {}: {e}", path.display()))?;
    let mut answer = String::new();
    std::io::BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(|e| format!("reading from {}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&answer)
        .map_err(|e| format!("unreadable answer from the daemon: {e}"))?;
    if v["ok"] == Value::Bool(true) {
        Ok(v["result"].clone())
    } else {
        Err(v["error"].as_str().unwrap_or("failed").to_string())
    }
}

#[cfg(not(unix))]
pub fn call(_path: &Path, _req: &CtlRequest) -> Result<Value, String> {
    Err("the control socket needs Unix sockets".into())
}

/// The answer to `req` as aligned text for people.
pub fn render(req: &CtlRequest, v: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let rows = |v: &Value, cols: &[&str]| -> Vec<Vec<String>> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|r| cols.iter().map(|c| s(&r[*c])).collect())
                    .collect()
            })
            .unwrap_or_default()
    };
    match req {
        CtlRequest::Status => {
            let keys = [
                ("version", "version"),
                ("node", "node"),
                ("uptime", "uptime_secs"),
                ("state", "draining"),
                ("calls up", "calls_up"),
                ("media relay sessions", "media_sessions"),
                ("registrations", "registrations"),
                ("location store", "store_up"),
                ("calls/s (1 min)", "calls_per_second"),
                ("calls started", "calls_started"),
                ("calls ended", "calls_ended"),
                ("bans", "bans"),
                ("users", "users"),
            ];
            keys.iter()
                .map(|(label, k)| {
                    let val = match *k {
                        "uptime_secs" => human_secs(v[*k].as_u64().unwrap_or(0)),
                        "draining" if v[*k] == Value::Bool(true) => "draining".into(),
                        "draining" => "taking calls".into(),
                        "store_up" if v[*k] == Value::Bool(false) => {
                            "DOWN (REGISTER gets 500)".into()
                        }
                        "store_up" => "up".into(),
                        _ => s(&v[*k]),
                    };
                    format!("{:<16} {val}\n", format!("{label}:"))
                })
                .collect()
        }
        CtlRequest::Registrations { .. } => {
            let mut r = rows(
                v,
                &[
                    "user",
                    "contact",
                    "source",
                    "transport",
                    "expires_in",
                    "user_agent",
                ],
            );
            let paths = v.as_array().map(|a| {
                a.iter()
                    .map(|reg| {
                        let hops: Vec<String> = reg["path"]
                            .as_array()
                            .map(|p| p.iter().map(s).collect())
                            .unwrap_or_default();
                        if hops.is_empty() {
                            "-".to_string()
                        } else {
                            hops.join(",")
                        }
                    })
                    .collect::<Vec<_>>()
            });
            for (i, row) in r.iter_mut().enumerate() {
                row[4] = format!("{}s", row[4]);
                let path = paths.as_ref().and_then(|p| p.get(i)).cloned();
                row.push(path.unwrap_or_else(|| "-".into()));
            }
            table(
                &[
                    "USER",
                    "CONTACT",
                    "SOURCE",
                    "TRANSPORT",
                    "EXPIRES IN",
                    "USER AGENT",
                    "PATH",
                ],
                r,
                "no registrations",
            )
        }
        CtlRequest::Calls => {
            let r: Vec<Vec<String>> = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|c| {
                            let b: Vec<String> = c["b_call_ids"]
                                .as_array()
                                .map(|b| b.iter().map(s).collect())
                                .unwrap_or_default();
                            vec![
                                s(&c["id"]),
                                format!("{} → {}", s(&c["caller"]), s(&c["callee"])),
                                s(&c["state"]),
                                human_secs(c["duration_secs"].as_u64().unwrap_or(0)),
                                s(&c["a_call_id"]),
                                if b.is_empty() {
                                    "-".into()
                                } else {
                                    b.join(",")
                                },
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            table(
                &[
                    "ID",
                    "CALL",
                    "STATE",
                    "DURATION",
                    "A-LEG CALL-ID",
                    "B-LEG CALL-ID",
                ],
                r,
                "no calls",
            )
        }
        CtlRequest::Hangup { .. } => format!(
            "call {} hung up ({} / {})\n",
            s(&v["call"]),
            s(&v["cause"]),
            s(&v["code"])
        ),
        CtlRequest::Unregister { .. } => format!(
            "{}: {} binding(s) removed\n",
            s(&v["user"]),
            s(&v["removed"])
        ),
        CtlRequest::Bans => {
            let mut r = rows(v, &["addr", "remaining_secs"]);
            for row in &mut r {
                row[1] = human_secs(row[1].parse().unwrap_or(0));
            }
            table(&["ADDRESS", "REMAINING"], r, "no bans")
        }
        CtlRequest::Unban { .. } => format!("{} unbanned\n", s(&v["addr"])),
        CtlRequest::Gateways => {
            let mut r = rows(v, &["name", "target", "registration", "expires_in", "up"]);
            for row in &mut r {
                if let Ok(n) = row[3].parse() {
                    row[3] = human_secs(n);
                }
                row[4] = if row[4] == "true" { "up" } else { "down" }.to_string();
            }
            table(
                &["GATEWAY", "TARGET", "REGISTRATION", "EXPIRES IN", "STATE"],
                r,
                "no gateways",
            )
        }
        CtlRequest::Trace { .. } => crate::ladder::render_ladder(v, false),
        CtlRequest::Drain => format!(
            "draining: new calls get 503, {} call(s) in progress go on\n",
            s(&v["calls_up"])
        ),
        CtlRequest::Resume => format!(
            "taking calls again ({} call(s) in progress)\n",
            s(&v["calls_up"])
        ),
        CtlRequest::Reload => format!(
            "reloaded: {} users, {} binding(s) of removed or disabled users removed{}\n",
            s(&v["users"]),
            s(&v["removed_bindings"]),
            if v["cdr_reopened"] == Value::Bool(true) {
                ", CDR file reopened"
            } else {
                ""
            }
        ),
    }
}

fn human_secs(n: u64) -> String {
    match n {
        0..=59 => format!("{n}s"),
        60..=3599 => format!("{}m{:02}s", n / 60, n % 60),
        3600..=86_399 => format!("{}h{:02}m", n / 3600, (n % 3600) / 60),
        _ => format!("{}d{:02}h", n / 86_400, (n % 86_400) / 3600),
    }
}

/// Columns padded to their widest cell (by characters), two spaces apart.
fn table(head: &[&str], rows: Vec<Vec<String>>, empty: &str) -> String {
    if rows.is_empty() {
        return format!("{empty}\n");
    }
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                let pad = w - c.chars().count();
                out.push_str(c);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(head.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_documented() {
        let r: CtlRequest = serde_json::from_str(r#"{"cmd":"hangup","call":3}"#).unwrap();
        assert_eq!(
            r,
            CtlRequest::Hangup {
                call: 3,
                cause: None
            }
        );
        let r: CtlRequest =
            serde_json::from_str(r#"{"cmd":"registrations","user":"alice"}"#).unwrap();
        assert_eq!(
            r,
            CtlRequest::Registrations {
                user: Some("alice".into())
            }
        );
        assert_eq!(
            serde_json::to_string(&CtlRequest::Status).unwrap(),
            r#"{"cmd":"status"}"#
        );
        assert!(serde_json::from_str::<CtlRequest>(r#"{"cmd":"reboot"}"#).is_err());
    }

    #[test]
    fn registrations_show_the_path_and_status_the_node() {
        let regs = json!([
            {"user": "1000", "contact": "sip:1000@192.168.1.20", "source": "10.0.0.1:5060",
             "transport": "UDP", "expires_in": 60, "user_agent": null,
             "path": ["<sip:10.0.0.1;lr>", "<sip:core.example;lr>"]},
            {"user": "1001", "contact": "sip:1001@192.0.2.7", "source": "192.0.2.7:5060",
             "transport": "UDP", "expires_in": 30, "user_agent": "x", "path": []}
        ]);
        let t = render(&CtlRequest::Registrations { user: None }, &regs);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].ends_with("PATH"), "{t}");
        assert!(
            lines[1].ends_with("<sip:10.0.0.1;lr>,<sip:core.example;lr>"),
            "{t}"
        );
        assert!(lines[2].ends_with(" -"), "{t}");
        let status = render(&CtlRequest::Status, &json!({"node": "fs1"}));
        assert!(status.contains("node:            fs1"), "{status}");
    }

    #[test]
    fn tables_align_by_characters() {
        let t = table(
            &["ID", "CALL"],
            vec![
                vec!["10".into(), "bob → alice".into()],
                vec!["9".into(), "x".into()],
            ],
            "none",
        );
        assert_eq!(t, "ID  CALL\n10  bob → alice\n9   x\n");
        assert_eq!(table(&["A"], vec![], "no calls"), "no calls\n");
    }

    #[test]
    fn call_rate_over_the_last_minute() {
        let t0 = Instant::now();
        let mut r = CallRate::default();
        r.sample(t0, 0);
        assert_eq!(r.per_second(t0, 0), 0.0);
        for i in 1..=120u64 {
            r.sample(t0 + Duration::from_secs(i), i * 5);
        }
        let now = t0 + Duration::from_secs(120);
        assert!(
            (r.per_second(now, 600) - 5.0).abs() < 0.01,
            "{}",
            r.per_second(now, 600)
        );
    }

    #[test]
    fn the_socket_defaults_beside_the_config_file() {
        if std::env::var_os("RUNTIME_DIRECTORY").is_none() {
            assert_eq!(
                socket_path(None, Path::new("/etc/ferroswitch/ferroswitch.toml")),
                Path::new("/etc/ferroswitch/ctl.sock")
            );
        }
        assert_eq!(
            socket_path(Some(Path::new("/x/y.sock")), Path::new("/etc/f.toml")),
            Path::new("/x/y.sock")
        );
    }
}
