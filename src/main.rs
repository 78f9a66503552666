//! The `ferroswitch` command: run the daemon, check a configuration, hash a password, show
//! where the dialplan sends a number (`route`), and `ctl`, the client of a running daemon's
//! control socket (`ferroswitch::control`).
//! Only argument parsing, logging set-up and signal handling live here; see `app`.

use clap::{Parser, Subcommand};
use ferroswitch::config::{self, Config, LogLevel};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "ferroswitch",
    version,
    about = "SIP softswitch: registrar and B2BUA"
)]
struct Cli {
    /// Configuration file [default: conf/ferroswitch.toml, or /etc/ferroswitch/ferroswitch.toml
    /// when there is no conf/ here and the package installed one].
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less log output (-q warnings, -qq errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    quiet: u8,
    /// Log level (error, warn, info, debug, trace); overrides -v/-q and the config file.
    /// RUST_LOG, when set, overrides everything.
    #[arg(long, global = true)]
    log_level: Option<LogLevel>,
    /// Log every SIP message sent and received (target `sip::wire`), like
    /// FreeSWITCH's `sofia global siptrace on`.
    #[arg(long, global = true)]
    sip_trace: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

impl Cli {
    /// `--config`, else the working copy's `conf/ferroswitch.toml`, else the packaged
    /// `/etc/ferroswitch/ferroswitch.toml` when only that exists.
    fn config_path(&self) -> PathBuf {
        if let Some(p) = &self.config {
            return p.clone();
        }
        let local = PathBuf::from("conf/ferroswitch.toml");
        let packaged = PathBuf::from("/etc/ferroswitch/ferroswitch.toml");
        if !local.exists() && packaged.exists() {
            packaged
        } else {
            local
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and the users directory; exit 0 when usable.
    CheckConfig,
    /// Show which dialplan rule NUMBER hits and where the call would go, without placing it.
    /// Exit 0 when a rule matched, 2 when none did, 1 when the configuration is invalid.
    Route {
        /// The context to route in: "default" is our users' calls, "public" the trunks' and
        /// other unauthenticated callers'.
        #[arg(long, default_value = ferroswitch::routing::DEFAULT_CONTEXT)]
        context: String,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
        /// The dialled number (the user part of the Request-URI).
        number: String,
    },
    /// Read a password on stdin and print the HA1 (MD5 of USER:REALM:PASSWORD) to store as
    /// `ha1 = "..."` instead of the password.
    HashPassword { user: String, realm: String },
    /// Control a running daemon through its control socket (see README "Operating
    /// ferroswitch"); the socket is found from --config like `run` does, or --socket.
    Ctl {
        /// The control socket (default: from the config file).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Print the daemon's JSON answer instead of text.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: CtlCommand,
    },
}

#[derive(Subcommand)]
enum CtlCommand {
    /// Version, uptime, calls up, registrations, calls/s, bans.
    Status,
    /// Registered contacts (of USER only when given).
    Registrations { user: Option<String> },
    /// Calls in progress.
    Calls,
    /// End call CALL on both legs (BYE with Reason); CAUSE is a Q.850 name or number
    /// (default NORMAL_CLEARING / 16).
    Hangup { call: String, cause: Option<String> },
    /// Remove USER's bindings (only CONTACT when given).
    Unregister {
        user: String,
        contact: Option<String>,
    },
    /// Banned addresses.
    Bans,
    /// Lift the ban on ADDR.
    Unban { addr: String },
    /// Trunks: target, registration with the provider, up or down.
    Gateways,
    /// Read the users files again (like SIGHUP, which also reopens the CDR file).
    Reload,
    /// Stop taking new calls (INVITE and OPTIONS get 503, so an edge proxy's dispatcher sends
    /// calls elsewhere); calls in progress go on, registrations are still served.
    Drain,
    /// Take new calls again after `drain`.
    Resume,
    /// The SIP of recent call CALL (an id from `calls`, or a leg's Call-ID) as a ladder
    /// diagram: caller | ferroswitch | callee(s), one row per message.
    Trace {
        call: String,
        /// Each message's full text under its row.
        #[arg(long)]
        full: bool,
        /// Also write the call's SIP to FILE as a pcap capture (Wireshark, tshark -r).
        #[arg(long)]
        pcap: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::CheckConfig) => check_config(&cli),
        Some(Command::HashPassword { user, realm }) => hash_password(user, realm),
        Some(Command::Route {
            context,
            json,
            number,
        }) => route(&cli, context, *json, number),
        Some(Command::Ctl {
            socket,
            json,
            command,
        }) => ctl(&cli, socket.as_deref(), *json, command),
        None => run(&cli),
    }
}

fn check_config(cli: &Cli) -> ExitCode {
    let report = config::check(&cli.config_path());
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    match &report.config {
        Some(c) if report.is_ok() => {
            let listen: Vec<String> = c.server.listen.iter().map(|l| l.to_string()).collect();
            let mut routing = String::new();
            if let Some(d) = &c.dialplan {
                routing.push_str(&format!(", dialplan {}", d.display()));
            }
            if !c.gateways.is_empty() {
                routing.push_str(&format!(", {} gateways", c.gateways.len()));
            }
            if let Some(node) = &c.server.node_id {
                routing.push_str(&format!(", node {node}"));
            }
            if !c.registrar.trusted_proxies.is_empty() {
                let nets: Vec<String> = c
                    .registrar
                    .trusted_proxies
                    .iter()
                    .map(|n| n.to_string())
                    .collect();
                routing.push_str(&format!(", trusted proxies {}", nets.join(" ")));
            }
            if let Some(f) = &c.registrar.nonce_secret_file {
                routing.push_str(&format!(", nonce secret from {}", f.display()));
            }
            println!(
                "{}: OK ({} users, listening on {}{routing}, {} warnings)",
                cli.config_path().display(),
                c.users.len(),
                listen.join(" "),
                report.warnings.len()
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "{}: {} errors",
                cli.config_path().display(),
                report.errors.len()
            );
            ExitCode::FAILURE
        }
    }
}

fn route(cli: &Cli, context: &str, json: bool, number: &str) -> ExitCode {
    let path = cli.config_path();
    let loaded = Config::load(&path).and_then(|c| c.load_dialplan().map(|d| (c, d)));
    let (config, dialplan) = match loaded {
        Ok(both) => both,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!("{}: {} errors", path.display(), errors.0.len());
            return ExitCode::FAILURE;
        }
    };
    if !dialplan.has_context(context) {
        let known: Vec<&str> = dialplan.contexts().collect();
        eprintln!(
            "note: the dialplan has no context {context:?} (it has: {})",
            known.join(", ")
        );
    }
    let decision = dialplan.route(context, number);
    if json {
        match serde_json::to_string(&decision) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{}", decision.describe(number, &config.users));
    }
    if decision.matched() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn ctl(cli: &Cli, socket: Option<&std::path::Path>, json: bool, cmd: &CtlCommand) -> ExitCode {
    use ferroswitch::control::{self, CtlRequest};
    let req = match cmd {
        CtlCommand::Status => CtlRequest::Status,
        CtlCommand::Registrations { user } => CtlRequest::Registrations { user: user.clone() },
        CtlCommand::Calls => CtlRequest::Calls,
        CtlCommand::Hangup { call, cause } => match call.trim().parse() {
            Ok(call) => CtlRequest::Hangup {
                call,
                cause: cause.clone(),
            },
            Err(_) => {
                eprintln!(
                    "error: {call:?} is not a call id (a number from `ferroswitch ctl calls`)"
                );
                return ExitCode::FAILURE;
            }
        },
        CtlCommand::Unregister { user, contact } => CtlRequest::Unregister {
            user: user.clone(),
            contact: contact.clone(),
        },
        CtlCommand::Bans => CtlRequest::Bans,
        CtlCommand::Gateways => CtlRequest::Gateways,
        CtlCommand::Unban { addr } => CtlRequest::Unban { addr: addr.clone() },
        CtlCommand::Reload => CtlRequest::Reload,
        CtlCommand::Drain => CtlRequest::Drain,
        CtlCommand::Resume => CtlRequest::Resume,
        CtlCommand::Trace { call, .. } => CtlRequest::Trace { call: call.clone() },
    };
    let path = control::client_socket_path(socket, &cli.config_path());
    match control::call(&path, &req) {
        Ok(v) => {
            if let CtlCommand::Trace {
                pcap: Some(file), ..
            } = cmd
            {
                if let Err(e) = std::fs::write(file, ferroswitch::ladder::pcap(&v)) {
                    eprintln!("error: writing {}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            }
            match cmd {
                _ if json => println!("{v}"),
                CtlCommand::Trace { full: true, .. } => {
                    print!("{}", ferroswitch::ladder::render_ladder(&v, true))
                }
                _ => print!("{}", control::render(&req, &v)),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn hash_password(user: &str, realm: &str) -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        eprintln!("error: reading the password from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("error: empty password on stdin");
        return ExitCode::FAILURE;
    }
    println!(
        "{}",
        ferroswitch::auth::hash_password(user, realm, password)
    );
    ExitCode::SUCCESS
}

/// The default line format, preceded by `node=<id> ` when `[server] node_id` is set: in the
/// formatter rather than in a span, so that every line carries it, those of tasks and
/// threads outside the driver included.
struct NodeFormat {
    node: Option<String>,
    inner: tracing_subscriber::fmt::format::Format,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for NodeFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        if let Some(node) = &self.node {
            write!(writer, "node={node} ")?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

fn init_logging(cli: &Cli, cfg_level: LogLevel, cfg_trace: bool, node: Option<String>) {
    let levels = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];
    let level = cli.log_level.unwrap_or_else(|| {
        let base = levels.iter().position(|l| *l == cfg_level).unwrap_or(2) as i32;
        let i = (base + i32::from(cli.verbose) - i32::from(cli.quiet)).clamp(0, 4);
        levels[i as usize]
    });
    let wire = if cli.sip_trace || cfg_trace {
        "trace"
    } else {
        "info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},sip::wire={wire},ferroswitch::security=info"
        ))
    });
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .event_format(NodeFormat {
            node,
            inner: tracing_subscriber::fmt::format::Format::default().with_ansi(ansi),
        })
        .init();
}

fn run(cli: &Cli) -> ExitCode {
    let config = match Config::load(&cli.config_path()) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{}: not started, fix the errors above (try `ferroswitch check-config`)",
                cli.config_path().display()
            );
            return ExitCode::FAILURE;
        }
    };
    init_logging(
        cli,
        config.log.level,
        config.log.sip_trace,
        config.server.node_id.clone(),
    );
    raise_fd_limit();
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // Before anything is announced, so a signal sent as soon as we listen is handled.
        let mut signals = Signals::new();
        let sockets = match ferroswitch::app::bind(&config) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen: {e}");
                return ExitCode::FAILURE;
            }
        };
        let running = match ferroswitch::app::start(&config, sockets) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        for (t, addr) in running.local_addrs() {
            tracing::info!("listening on {}:{addr}", t.as_str().to_ascii_lowercase());
        }
        tracing::info!(
            "ferroswitch {} serving {} users, domain {}",
            env!("CARGO_PKG_VERSION"),
            config.users.len(),
            config
                .server
                .domain
                .as_deref()
                .unwrap_or("(any local address)")
        );
        let tls_reload = || match running.reload_tls() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
            Err(_) if config.tls.is_none() => {}
            Err(e) => {
                tracing::error!("SIGHUP: TLS certificate not reloaded, the old one stays: {e}")
            }
        };
        let first = signals.stop(running.control(), tls_reload).await;
        match config.server.drain_timeout.as_secs() {
            0 => tracing::info!("{first}: shutting down, clearing calls (again to stop at once)"),
            t => tracing::info!(
                "{first}: shutting down, new calls refused, calls in progress may go on for up to {t} s (again to stop at once)"
            ),
        }
        let control = running.control().clone();
        let cleared = running
            .graceful_shutdown(async {
                let second = signals
                    .stop(&control, || {
                        tracing::info!("SIGHUP while stopping: TLS not reloaded")
                    })
                    .await;
                tracing::info!("{second} again: stopping at once");
            })
            .await;
        tracing::info!(cleared, "stopped");
        ExitCode::SUCCESS
    })
}

/// Raises the soft limit on open files to the hard limit: every TCP connection is a file, and
/// systemd's default soft limit of 1,024 makes `accept` fail with EMFILE long before the
/// connection table is full. The unit file sets `LimitNOFILE=65536` for the hard limit.
#[cfg(unix)]
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a pointer to a live rlimit struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur >= lim.rlim_max {
            tracing::debug!(limit = lim.rlim_cur, "open files limit");
            return;
        }
        let old = lim.rlim_cur;
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
            tracing::info!("open files limit raised from {old} to {}", lim.rlim_max);
        } else {
            let e = std::io::Error::last_os_error();
            tracing::warn!("cannot raise the open files limit from {old}: {e}");
        }
    }
}

#[cfg(not(unix))]
fn raise_fd_limit() {}

/// The signals the daemon acts on. SIGTERM and SIGINT (Ctrl-C) stop it; SIGHUP reloads the
/// users files, reopens the CDR file (logrotate's `postrotate kill -HUP`) and reloads the
/// TLS certificate.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let open = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("cannot handle {name}: {e}");
                    None
                }
            };
            Signals {
                term: open(SignalKind::terminate(), "SIGTERM"),
                hup: open(SignalKind::hangup(), "SIGHUP"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Waits for the next SIGTERM or SIGINT (on every SIGHUP on the way: the users files
    /// reloaded, then `on_hup`, the TLS certificate); its name.
    async fn stop(
        &mut self,
        control: &ferroswitch::control::ControlHandle,
        on_hup: impl Fn(),
    ) -> &'static str {
        #[cfg(unix)]
        loop {
            let term = async {
                match &mut self.term {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            let hup = async {
                match &mut self.hup {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return "SIGINT",
                _ = term => return "SIGTERM",
                _ = hup => {
                    tracing::info!("SIGHUP: reloading the users files, reopening the CDR file");
                    // Errors are logged by `reload` (file, line, key); the old users stay.
                    let _ = control.reload().await;
                    on_hup();
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &on_hup;
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
