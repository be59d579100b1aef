//! Command line: parses arguments and runs subcommands, one file per area.
//! `anyhow` lives here and in `main` only.
//!
//! - `serve.rs`: `serve`, `demo`, `init` and the hidden `sample-app`;
//! - `check.rs`: `check-config [--explain]`;
//! - `user.rs`: `user add|list|show|disable|enable|suspend|close|delete|set-password|reset-2fa|import|export`;
//! - `password.rs`: `hash-password`, and reading, checking or generating a new password;
//! - `db.rs`: `db migrate`;
//! - `session.rs`: `session list|revoke` and `lock list|clear`, through the running
//!   gateway's control socket (or Redis directly).
//!
//! Every subcommand that reads a config takes it the same way: a flattened
//! [`ConfigArg`] (`--config FILE`).

mod check;
mod db;
mod password;
mod serve;
mod session;
mod user;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::anyhow;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::control::Command;
use crate::users::cache::Accounts;
use crate::users::store::AccountError;

pub use db::DbCmd;
pub use password::generate_password;
pub use session::{LockCmd, SessionCmd};
pub use user::UserCmd;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Reverse-proxy authentication gateway"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Gateway + built-in sample app + demo user, no setup.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        #[arg(long, default_value = "127.0.0.1:8081")]
        app_listen: String,
    },
    /// Starter config, secrets/ and users file in DIR; never overwrites.
    Init { dir: Option<PathBuf> },
    /// Run the gateway.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate a config file without starting.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
        /// Also print the [defense] ladder as a timeline, and what it means in numbers.
        #[arg(long)]
        explain: bool,
    },
    /// Manage accounts (users file or database, per `[users] backend`).
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// The account database's schema.
    Db {
        #[command(subcommand)]
        cmd: DbCmd,
    },
    /// List or revoke a user's sessions.
    Session {
        #[command(subcommand)]
        cmd: SessionCmd,
    },
    /// List locked accounts and failing clients, or clear one.
    Lock {
        #[command(subcommand)]
        cmd: LockCmd,
    },
    /// Read a password on stdin, print its argon2id PHC string.
    HashPassword,
    /// The sample upstream app on its own (used by tests and for trying things out).
    #[command(hide = true)]
    SampleApp {
        #[arg(long)]
        listen: String,
    },
}

/// `--config FILE`, flattened into every subcommand that reads the config.
/// (`about = None`: this doc is not the help text of the subcommands.)
#[derive(clap::Args, Debug, Clone)]
#[command(about = None, long_about = None)]
pub struct ConfigArg {
    #[arg(long)]
    pub config: PathBuf,
}

impl ConfigArg {
    /// Reads and validates the file; every problem in the error.
    pub fn load(&self) -> anyhow::Result<Config> {
        load_config(&self.config)
    }

    pub fn path(&self) -> &Path {
        &self.config
    }
}

pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| {
        anyhow!(
            "{} has problems:\n  {}",
            path.display(),
            e.problems.join("\n  ")
        )
    })
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Demo { listen, app_listen } => serve::demo(&listen, &app_listen),
        Cmd::Init { dir } => serve::init(&dir.unwrap_or_else(|| PathBuf::from("."))),
        Cmd::Serve { config } => serve::serve(&config),
        Cmd::Db { cmd } => db::run(cmd),
        Cmd::CheckConfig { config, explain } => check::check_config(&config, explain),
        Cmd::User { cmd } => user::run(cmd),
        Cmd::Session { cmd } => session::session(cmd),
        Cmd::Lock { cmd } => session::lock(cmd),
        Cmd::HashPassword => password::hash_password(),
        Cmd::SampleApp { listen } => serve::sample_app(&listen),
    }
}

pub fn open_accounts(cfg: &Config) -> anyhow::Result<Accounts> {
    Ok(Accounts::open(
        &cfg.users,
        Arc::new(crate::clock::SystemClock),
    )?)
}

/// Runs one account operation from the CLI; then, for the users file, asks a running
/// gateway (if any) to re-read it at once instead of at its next poll (a database
/// tells every gateway itself).
fn with_accounts<T>(
    cfg: &Config,
    f: impl for<'a> FnOnce(&'a Accounts) -> futures::future::BoxFuture<'a, Result<T, AccountError>>,
) -> anyhow::Result<T> {
    let accounts = open_accounts(cfg)?;
    let out = accounts.block_on(f(&accounts))??;
    if accounts.is_file() {
        let sock = crate::server::control_socket(cfg);
        if sock.exists() {
            if let Ok(rt) = runtime() {
                let _ = rt.block_on(crate::control::send(&sock, &Command::ReloadUsers));
            }
        }
    }
    Ok(out)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("portcullis").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every subcommand that reads a config takes `--config FILE` (required), in
    /// any position among its other arguments.
    #[test]
    fn every_config_subcommand_takes_the_flattened_config() {
        let with_config: &[&[&str]] = &[
            &["serve"],
            &["check-config", "--explain"],
            &["db", "migrate"],
            &["user", "add", "alice", "--email", "a@example.com"],
            &["user", "list"],
            &["user", "show", "alice"],
            &["user", "disable", "alice"],
            &["user", "enable", "alice"],
            &["user", "delete", "alice"],
            &["user", "set-password", "alice", "--password-stdin"],
            &["user", "reset-2fa", "alice"],
            &["user", "suspend", "alice", "--reason", "audit"],
            &["user", "close", "alice"],
            &["user", "import", "--from", "u.toml"],
            &["user", "export", "--to", "u.toml"],
            &["session", "list", "alice"],
            &["session", "revoke", "alice", "--handle", "h"],
            &["session", "revoke", "alice", "--all"],
            &["session", "list", "alice", "--all"],
            &["lock", "list"],
            &["lock", "clear", "alice"],
        ];
        for args in with_config {
            let e = parse(args).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                e.contains("--config <CONFIG>"),
                "{args:?} without --config: {e}"
            );
            for at in [args.len(), args.len().min(2)] {
                let mut full = args.to_vec();
                full.splice(at..at, ["--config", "/etc/p.toml"]);
                let cli = parse(&full).unwrap_or_else(|e| panic!("{full:?}: {e}"));
                let config = match cli.command {
                    Cmd::Serve { config } | Cmd::CheckConfig { config, .. } => config,
                    Cmd::Db {
                        cmd: DbCmd::Migrate { config },
                    } => config,
                    Cmd::User { cmd } => user::config_of(cmd),
                    Cmd::Session {
                        cmd: SessionCmd::List { config, .. } | SessionCmd::Revoke { config, .. },
                    } => config,
                    Cmd::Lock {
                        cmd: LockCmd::List { config } | LockCmd::Clear { config, .. },
                    } => config,
                    _ => panic!("{full:?}: not a config subcommand"),
                };
                assert_eq!(config.path(), Path::new("/etc/p.toml"), "{full:?}");
            }
        }
        // The others take none.
        for args in [&["demo"][..], &["init"], &["hash-password"]] {
            let mut full = args.to_vec();
            full.extend(["--config", "x"]);
            assert!(parse(&full).is_err(), "{full:?}");
        }
    }
}
