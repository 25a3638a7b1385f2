use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use hearth::{
    admin::{self, federation_check as check},
    config::Config,
    delivery::status::{self, DestinationStatus},
    keys::own::OwnKeys,
    net::https::HttpsClient,
    rooms::event::origin_ts,
    store::{OpenError, Store},
};
use ruma::OwnedServerName;

#[global_allocator]
static ALLOCATOR: hearth::alloc::Allocator = hearth::alloc::Allocator;

/// hearth: a lean Matrix homeserver.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Configuration file (environment variables HEARTH_* override it).
    #[arg(long, short, default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Check that another server (or this one) federates: discovery, TLS, version, keys.
    FederationCheck {
        server_name: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage this server's signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Outbound federation.
    Federation {
        #[command(subcommand)]
        command: FederationCommand,
    },
    /// Take a consistent, checked backup of the data directory into DIR
    /// (new or empty), while the server runs or not; start hearth on DIR
    /// to restore it.
    Backup { dir: PathBuf },
    /// Write the whole server to FILE in hearth's engine-neutral export
    /// format (one JSON record per line), while it runs or not.
    Export { file: PathBuf },
    /// Load an export into the (new or empty) data directory; no server
    /// may be running on it.
    Import { file: PathBuf },
    /// Local accounts. Passwords are read from standard input unless given.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// What users reported (events, rooms, users): listed oldest first;
    /// `hearth reports dismiss ID` once dealt with.
    Reports {
        #[command(subcommand)]
        command: Option<ReportsCommand>,
    },
    /// The media repository: what it holds, other servers' media dropped,
    /// one item deleted.
    Media {
        #[command(subcommand)]
        command: MediaCommand,
    },
    /// Push notifications to phones.
    Push {
        #[command(subcommand)]
        command: PushCommand,
    },
    /// Application services (bridges).
    Appservice {
        #[command(subcommand)]
        command: AppserviceCommand,
    },
}

#[derive(Subcommand)]
enum AppserviceCommand {
    /// Read a registration file as the server would, beside those in
    /// `appservice.registrations`, before adding it.
    Check { file: PathBuf },
    /// Each registered application service with its queue and delivery
    /// state (needs the running server).
    #[command(alias = "list")]
    Status,
}

#[derive(Subcommand)]
enum PushCommand {
    /// Send a test notification to each of USER's pushers and print what
    /// each push gateway answered (needs the running server).
    Test { user: String },
}

#[derive(Subcommand)]
enum ReportsCommand {
    /// Remove a report from the list.
    Dismiss { id: u64 },
}

#[derive(Subcommand)]
enum MediaCommand {
    /// Items and bytes kept: our users' uploads and other servers' media.
    Stats,
    /// Drop other servers' media not downloaded for this long ("7d",
    /// "12h"; default media.remote_retention), and the least recently
    /// downloaded beyond media.remote_cache_size. It is fetched again
    /// when someone asks for it.
    PurgeRemote {
        #[arg(long)]
        older_than: Option<String>,
    },
    /// Delete one item, ours or another server's, with its thumbnails:
    /// `hearth media delete mxc://example.org/AbC`.
    Delete { uri: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account: `hearth user add alice`.
    Add {
        name: String,
        /// The password (visible in your shell history: prefer standard input).
        #[arg(long)]
        password: Option<String>,
    },
    /// Set a new password and log out every device.
    ResetPassword {
        name: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Lock an account for good: it can no longer log in.
    Deactivate { name: String },
}

#[derive(Subcommand)]
enum FederationCommand {
    /// Each destination's queue depth, oldest queued event, last success,
    /// failures and next retry.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget a destination's failures so its queue is sent now, not at
    /// its next retry time: `hearth federation retry matrix.example.org`.
    Retry { destination: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Retire the current signing key (it stays published as an old key) and start a new one.
    Rotate,
}

/// The configured filter (`log`, or `HEARTH_LOG`), with ruma's state
/// resolution and auth checks, which log every event they look at at
/// `info`, held to `warn` unless the filter asks for debug detail or names
/// them: per-event lines would cost an SD card a kilobyte per message.
fn log_filter(configured: &str) -> tracing_subscriber::EnvFilter {
    let detailed = ["debug", "trace", "ruma_state_res"]
        .iter()
        .any(|word| configured.contains(word));
    let filter = tracing_subscriber::EnvFilter::try_new(configured)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match "ruma_state_res=warn".parse() {
        Ok(quiet) if !detailed => filter.add_directive(quiet),
        _ => filter,
    }
}

fn main() -> ExitCode {
    return_large_allocations_to_the_system();
    let cli = Cli::parse();
    let config_given = std::env::args_os()
        .any(|a| a == "--config" || a == "-c" || a.to_string_lossy().starts_with("--config="));
    let config = match Config::load(&cli.config, config_given) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("hearth: config: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(&config.log))
        // stdout stays free for command output; the harness keeps stderr.
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hearth: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(hearth::server::run(config)),
        Command::Keys {
            command: KeysCommand::Rotate,
        } => runtime.block_on(rotate_keys(&config)),
        Command::Federation {
            command: FederationCommand::Status { json },
        } => runtime.block_on(federation_status(&config, json)),
        Command::Federation {
            command: FederationCommand::Retry { destination },
        } => runtime.block_on(federation_retry(&config, &destination)),
        Command::User { command } => runtime.block_on(user_command(&config, command)),
        Command::Media { command } => runtime.block_on(media_command(&config, command)),
        Command::Reports { command } => runtime.block_on(async {
            let dismiss = command.map(|ReportsCommand::Dismiss { id }| id);
            println!("{}", admin::reports::cli(&config, dismiss).await?);
            Ok(())
        }),
        Command::Push {
            command: PushCommand::Test { user },
        } => runtime.block_on(async {
            println!("{}", admin::push::cli(&config, &user).await?);
            Ok(())
        }),
        Command::Appservice {
            command: AppserviceCommand::Check { file },
        } => admin::appservices::check_cli(&config, &file).map(|text| println!("{text}")),
        Command::Appservice {
            command: AppserviceCommand::Status,
        } => runtime.block_on(async {
            println!("{}", admin::appservices::status_cli(&config).await?);
            Ok(())
        }),
        Command::Backup { dir } => runtime.block_on(backup(&config, &dir)),
        Command::Export { file } => runtime.block_on(export(&config, &file)),
        Command::Import { file } => import(&config, &file),
        Command::FederationCheck { server_name, json } => {
            runtime.block_on(federation_check(&config, &server_name, json))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the report; fails (exit 1) when the verdict is not OK.
async fn federation_check(config: &Config, server_name: &str, json: bool) -> Result<(), String> {
    let server = OwnedServerName::try_from(server_name)
        .map_err(|e| format!("{server_name:?} is not a server name: {e}"))?;
    let client = HttpsClient::new(config)?;
    let report = check::run(config, &client, &server).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!("{}", report.to_text());
    }
    if report.ok {
        Ok(())
    } else {
        Err(report.verdict)
    }
}

/// Reads the data directory when no server holds it, otherwise asks the
/// running server (which also knows each destination's last success).
async fn federation_status(config: &Config, json: bool) -> Result<(), String> {
    let (statuses, inbound): (Vec<DestinationStatus>, Inbound) = match Store::open(&config.data_dir)
    {
        Ok(store) => {
            let statuses = status::collect(
                &store.outbound,
                store.destinations.all().map_err(|e| e.to_string())?,
                &Default::default(),
                |id| {
                    store
                        .rooms
                        .event_json(id.as_str())
                        .ok()
                        .flatten()
                        .and_then(|event| origin_ts(&event))
                },
            )
            .map_err(|e| e.message)?;
            let staged = store.transactions.staged_count() as u64;
            (statuses, Inbound::Stopped(staged))
        }
        Err(OpenError::Locked) => {
            let (status, body) = admin::client::ask_running(
                config,
                http::Method::GET,
                "/_hearth/admin/v1/federation/status",
                None,
            )
            .await?;
            if status != 200 {
                return Err(format!("the running server refused: {status} {body}"));
            }
            let statuses =
                serde_json::from_value(body["destinations"].clone()).map_err(|e| e.to_string())?;
            let staged = body["inbound"]["staged_transactions"]
                .as_u64()
                .unwrap_or_default();
            (statuses, Inbound::Running(staged))
        }
        Err(e) => return Err(e.to_string()),
    };
    if json {
        let report = serde_json::json!({
            "destinations": statuses,
            "inbound": { "staged_transactions": inbound.staged() },
        });
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        println!("{}", status::to_text(&statuses, hearth::time::now_ms()));
        println!("{}", inbound.to_text());
    }
    Ok(())
}

/// Inbound transactions answered and not yet taken in.
enum Inbound {
    Running(u64),
    /// Found in the data directory: taken in when hearth starts.
    Stopped(u64),
}

impl Inbound {
    fn staged(&self) -> u64 {
        match self {
            Inbound::Running(n) | Inbound::Stopped(n) => *n,
        }
    }

    fn to_text(&self) -> String {
        match self {
            Inbound::Running(0) | Inbound::Stopped(0) => {
                "inbound: every answered transaction is taken in".into()
            }
            Inbound::Running(n) => {
                format!("inbound: {n} answered transaction(s) still being taken in")
            }
            Inbound::Stopped(n) => {
                format!("inbound: {n} answered transaction(s) to take in when hearth starts")
            }
        }
    }
}

/// Forgets the destination's failures in `data/` when no server holds it,
/// otherwise through the running server, which also sends its queue at once.
async fn federation_retry(config: &Config, destination: &str) -> Result<(), String> {
    let name = OwnedServerName::try_from(destination)
        .map_err(|e| format!("{destination:?} is not a server name: {e}"))?;
    let was_failing = match Store::open(&config.data_dir) {
        Ok(store) => {
            let was_failing = store
                .destinations
                .all()
                .map_err(|e| e.to_string())?
                .iter()
                .any(|(failing, _)| *failing == name);
            store
                .destinations
                .remove(&name)
                .map_err(|e| e.to_string())?;
            store.flush().await.map_err(|e| e.to_string())?;
            was_failing
        }
        Err(OpenError::Locked) => {
            let (status, body) = admin::client::ask_running(
                config,
                http::Method::POST,
                "/_hearth/admin/v1/federation/retry",
                Some(serde_json::json!({ "destination": name })),
            )
            .await?;
            match body["was_failing"].as_bool() {
                Some(was_failing) if status == 200 => was_failing,
                _ => return Err(format!("the running server refused: {status} {body}")),
            }
        }
        Err(e) => return Err(e.to_string()),
    };
    if was_failing {
        println!("{name}: failures forgotten; it will be tried at once");
    } else {
        println!("{name}: had no failures on record");
    }
    Ok(())
}

/// Rotates in place when no server holds the data directory, otherwise
/// asks the running server through its admin API.
async fn rotate_keys(config: &Config) -> Result<(), String> {
    match Store::open(&config.data_dir) {
        Ok(store) => {
            let name = config.server_name.as_str();
            let keys = OwnKeys::load_or_generate(&store.signing_keys, store.data_dir(), name)
                .map_err(|e| e.message)?;
            let rotated = OwnKeys::rotate(&store.signing_keys, store.data_dir(), name)
                .map_err(|e| e.message)?;
            println!(
                "retired {}; new signing key {}",
                keys.current_id, rotated.current_id
            );
            Ok(())
        }
        Err(OpenError::Locked) => {
            let (status, body) = admin::client::ask_running(
                config,
                http::Method::POST,
                "/_hearth/admin/v1/keys/rotate",
                Some(serde_json::json!({})),
            )
            .await?;
            match body.get("key_id").and_then(|k| k.as_str()) {
                Some(key_id) if status == 200 => {
                    println!("new signing key {key_id} (rotated by the running server)");
                    Ok(())
                }
                _ => Err(format!("the running server refused: {status} {body}")),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Runs `locally` on a backup service over `data/` when no server holds
/// it, otherwise posts `body` to the running server's admin `path`.
async fn with_backups<T, F>(
    config: &Config,
    path: &str,
    body: serde_json::Value,
    locally: impl FnOnce(hearth::backup::BackupService) -> F,
) -> Result<T, String>
where
    T: serde::de::DeserializeOwned,
    F: std::future::Future<Output = Result<T, String>>,
{
    hearth::store::identity::precheck(&config.data_dir, config.server_name.as_str())?;
    match Store::open(&config.data_dir) {
        Ok(store) => {
            let server_name = config.server_name.as_str();
            let kib_per_sec = config.backup.kib_per_sec;
            locally(hearth::backup::BackupService::new(
                store,
                server_name,
                kib_per_sec,
            ))
            .await
        }
        Err(OpenError::Locked) => {
            let (status, answer) =
                admin::client::ask_running(config, http::Method::POST, path, Some(body)).await?;
            if status != 200 {
                let error = answer.get("error").and_then(|e| e.as_str()).unwrap_or("");
                return Err(format!("the running server refused: {error} ({status})"));
            }
            serde_json::from_value(answer).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Takes a backup into `dir`, itself or through the running server.
async fn backup(config: &Config, dir: &std::path::Path) -> Result<(), String> {
    let dir = std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    hearth::backup::usable_target(&dir)?;
    let body = serde_json::json!({ "dir": dir });
    let report: hearth::backup::BackupReport = with_backups(
        config,
        "/_hearth/admin/v1/backup",
        body,
        |service| async move { service.take(&dir).await },
    )
    .await?;
    println!(
        "backed up {} records ({} KiB) into {}, checked; writes paused {} ms, took {} ms",
        report.records,
        (report.database_bytes + report.file_bytes) / 1024,
        report.dir.display(),
        report.pause_ms,
        report.took_ms
    );
    Ok(())
}

/// Writes the export to `file`, itself or through the running server.
async fn export(config: &Config, file: &std::path::Path) -> Result<(), String> {
    let file = std::path::absolute(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if file.exists() {
        return Err(format!("{} exists already", file.display()));
    }
    let body = serde_json::json!({ "file": file });
    let target = file.clone();
    let moved: hearth::backup::export::Moved = with_backups(
        config,
        "/_hearth/admin/v1/export",
        body,
        |service| async move { service.export(&target).await },
    )
    .await?;
    println!(
        "exported {} files and {} records to {}",
        moved.files,
        moved.records,
        file.display()
    );
    Ok(())
}

/// Loads an export into a new data directory.
fn import(config: &Config, file: &std::path::Path) -> Result<(), String> {
    let moved =
        hearth::backup::export::import(file, &config.data_dir, config.server_name.as_str())?;
    println!(
        "imported {} files and {} records into {}; start hearth on it",
        moved.files,
        moved.records,
        config.data_dir.display()
    );
    Ok(())
}

/// A password from the flag, or the first line of standard input.
fn read_password(given: Option<String>) -> Result<String, String> {
    if let Some(password) = given {
        return Ok(password);
    }
    eprint!("Password: ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("no password given".into());
    }
    Ok(password)
}

/// Runs a user command on `data/` when no server holds it, otherwise
/// through the running server's admin API.
async fn user_command(config: &Config, command: UserCommand) -> Result<(), String> {
    use hearth::{accounts::AccountService, admin::users};
    let (verb, path, body) = match &command {
        UserCommand::Add { name, password } => {
            let password = read_password(password.clone())?;
            (
                "created",
                "/_hearth/admin/v1/users".to_owned(),
                serde_json::json!({"name": name, "password": password}),
            )
        }
        UserCommand::ResetPassword { name, password } => {
            let password = read_password(password.clone())?;
            let path = format!(
                "/_hearth/admin/v1/users/{}/password",
                hearth::http_util::percent_encode(name)
            );
            (
                "new password for",
                path,
                serde_json::json!({"password": password}),
            )
        }
        UserCommand::Deactivate { name } => {
            let path = format!(
                "/_hearth/admin/v1/users/{}/deactivate",
                hearth::http_util::percent_encode(name)
            );
            ("deactivated", path, serde_json::json!({}))
        }
    };
    let user = match Store::open(&config.data_dir) {
        Ok(store) => {
            let accounts = AccountService::new(
                config.server_name.clone(),
                store.accounts.clone(),
                &config.limits,
                &config.auth,
            );
            let password = || body["password"].as_str().unwrap_or_default().to_owned();
            let done = match &command {
                UserCommand::Add { name, .. } => users::add(&accounts, name, password()).await,
                UserCommand::ResetPassword { name, .. } => {
                    users::reset_password(&accounts, name, password()).await
                }
                UserCommand::Deactivate { name } => users::deactivate(&accounts, None, name).await,
            };
            done.map_err(|e| e.message)?
        }
        Err(OpenError::Locked) => {
            let (status, answer) =
                admin::client::ask_running(config, http::Method::POST, &path, Some(body.clone()))
                    .await?;
            match answer.get("user_id").and_then(|u| u.as_str()) {
                Some(user) if status == 200 => user.to_owned(),
                _ => {
                    let error = answer.get("error").and_then(|e| e.as_str()).unwrap_or("");
                    return Err(format!("the running server refused: {error} ({status})"));
                }
            }
        }
        Err(e) => return Err(e.to_string()),
    };
    println!("{verb} {user}");
    Ok(())
}

/// glibc raises its mmap threshold after the first large free, so later
/// large buffers (Argon2's 19 MiB per password hash) come from per-thread
/// arenas that keep the memory after use: ten logins left 150 MB resident.
/// A fixed threshold keeps them mmapped and returned on free.
fn return_large_allocations_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

async fn media_command(config: &Config, command: MediaCommand) -> Result<(), String> {
    use admin::media::MediaAction;
    let action = match command {
        MediaCommand::Stats => MediaAction::Stats,
        MediaCommand::PurgeRemote { older_than } => MediaAction::PurgeRemote {
            older_than: older_than
                .map(|text| hearth::config::parse_duration(&text))
                .transpose()
                .map_err(|e| format!("--older-than: {e}"))?,
        },
        MediaCommand::Delete { uri } => MediaAction::Delete { uri },
    };
    println!("{}", admin::media::cli(config, action).await?);
    Ok(())
}
