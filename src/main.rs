use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use hearth::{
    admin,
    config::Config,
    federation::{
        check,
        client::FederationClient,
        sender::origin_ts,
        status::{self, DestinationStatus},
    },
    keys::own::OwnKeys,
    store::{OpenError, Store},
};
use ruma::OwnedServerName;

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
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Retire the current signing key (it stays published as an old key) and start a new one.
    Rotate,
}

fn main() -> ExitCode {
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
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        // stdout stays free for command output; the harness keeps stderr.
        .with_writer(std::io::stderr)
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
    let client = FederationClient::new(config)?;
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
    let statuses: Vec<DestinationStatus> = match Store::open(&config.data_dir) {
        Ok(store) => status::collect(
            &store.outbound,
            store.destinations.all().map_err(|e| e.message)?,
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
        .map_err(|e| e.message)?,
        Err(OpenError::Locked) => {
            let token = admin::read_token(&config.data_dir)?;
            let (status, body) = admin::client::call(
                config.listen.client,
                &token,
                http::Method::GET,
                "/_hearth/admin/v1/federation/status",
                None,
            )
            .await?;
            if status != 200 {
                return Err(format!("the running server refused: {status} {body}"));
            }
            serde_json::from_value(body["destinations"].clone()).map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    if json {
        let text = serde_json::to_string_pretty(&statuses).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        println!("{}", status::to_text(&statuses, hearth::time::now_ms()));
    }
    Ok(())
}

/// Rotates in place when no server holds the data directory, otherwise
/// asks the running server through its admin API.
async fn rotate_keys(config: &Config) -> Result<(), String> {
    match Store::open(&config.data_dir) {
        Ok(store) => {
            let keys = OwnKeys::load_or_generate(&store.signing_keys).map_err(|e| e.message)?;
            let rotated = OwnKeys::rotate(&store.signing_keys).map_err(|e| e.message)?;
            println!(
                "retired {}; new signing key {}",
                keys.current_id, rotated.current_id
            );
            Ok(())
        }
        Err(OpenError::Locked) => {
            let token = admin::read_token(&config.data_dir)?;
            let (status, body) = admin::client::call(
                config.listen.client,
                &token,
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
