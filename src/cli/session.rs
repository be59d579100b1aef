//! `session list|revoke` and `lock list|clear`: through the running gateway's
//! control socket or, with Redis, against the store directly. Also ending a
//! user's sessions after a change made by `user ...`.

use std::sync::Arc;

use anyhow::bail;
use clap::Subcommand;

use super::{runtime, ConfigArg};
use crate::config::{Config, StoreBackend};
use crate::control::{Answer, Command};

#[derive(Subcommand)]
pub enum SessionCmd {
    /// NAME's sessions (every one of them; `--all` says so explicitly).
    List {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
        #[arg(long)]
        all: bool,
    },
    /// End all of NAME's sessions (also said as `--all`), or one with --handle.
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
        #[arg(long, conflicts_with = "all")]
        handle: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
pub enum LockCmd {
    /// Locked accounts (remaining time) and clients with failures (counts).
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Unlock an account by NAME, or forget a client's failures by ADDRESS.
    Clear {
        #[command(flatten)]
        config: ConfigArg,
        target: String,
    },
}

/// Ends a user's sessions now; the gateway also refuses them as soon as it
/// re-reads the users file, so a failure here is reported but not fatal.
pub(super) fn end_sessions(cfg: &Config, name: &str) {
    let cmd = Command::SessionRevoke {
        user: name.to_string(),
        handle: None,
    };
    match session_command(cfg, cmd) {
        Ok(Answer::Revoked { count }) => println!("ended {count} session(s)"),
        Ok(Answer::Error { message }) => eprintln!(
            "note: sessions not ended now ({message}); the gateway refuses them within a second"
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "note: {e}\nthe gateway refuses the sessions as soon as it re-reads the users file"
        ),
    }
}

/// Runs a session command on the running gateway (control socket) or, with
/// Redis, directly against the store.
fn session_command(cfg: &Config, cmd: Command) -> anyhow::Result<Answer> {
    let rt = runtime()?;
    rt.block_on(async {
        let sock = crate::server::control_socket(cfg);
        match crate::control::send(&sock, &cmd).await {
            Ok(a) => Ok(a),
            Err(e) => match &cfg.store.backend {
                StoreBackend::Memory => Err(e),
                StoreBackend::Redis { .. } => {
                    let clock: crate::clock::DynClock = Arc::new(crate::clock::SystemClock);
                    let store = crate::app::open_store(cfg, &clock)?;
                    let sessions = crate::session::Sessions::new(
                        store,
                        clock.clone(),
                        cfg.session.idle_timeout,
                        cfg.session.absolute_timeout,
                    );
                    match cmd {
                        Command::LockList | Command::LockClear { .. } => {
                            let d = crate::defense::Defense::new(
                                crate::app::open_store(cfg, &clock)?,
                                clock,
                                &cfg.defense,
                            );
                            Ok(crate::control::execute_locks(&d, cmd).await)
                        }
                        _ => Ok(crate::control::execute_sessions(&sessions, cmd).await),
                    }
                }
            },
        }
    })
}

pub fn session(cmd: SessionCmd) -> anyhow::Result<()> {
    match cmd {
        SessionCmd::List { config, name, .. } => {
            let cfg = config.load()?;
            match session_command(&cfg, Command::SessionList { user: name })? {
                Answer::Sessions { sessions } => {
                    for s in sessions {
                        println!(
                            "{}\tfactors={}\tcreated={}\tlast_seen={}\tclient={}",
                            &s.handle[..16.min(s.handle.len())],
                            s.factors,
                            s.created,
                            s.last_seen,
                            s.client
                        );
                    }
                    Ok(())
                }
                Answer::Error { message } => bail!(message),
                _ => bail!("unexpected answer"),
            }
        }
        SessionCmd::Revoke {
            config,
            name,
            handle,
            all: _,
        } => {
            let cfg = config.load()?;
            match session_command(&cfg, Command::SessionRevoke { user: name, handle })? {
                Answer::Revoked { count } => {
                    println!("ended {count} session(s)");
                    Ok(())
                }
                Answer::Error { message } => bail!(message),
                _ => bail!("unexpected answer"),
            }
        }
    }
}

pub fn lock(cmd: LockCmd) -> anyhow::Result<()> {
    match cmd {
        LockCmd::List { config } => {
            let cfg = config.load()?;
            match session_command(&cfg, Command::LockList)? {
                Answer::Locks { rows } => {
                    if rows.is_empty() {
                        println!("no locks, no failing clients");
                    }
                    for r in rows {
                        let state = match r.locked_for {
                            Some(s) => format!("locked for {s}s"),
                            None => "not locked".to_string(),
                        };
                        println!("{}\t{}\t{}\tfailures={}", r.kind, r.name, state, r.failures);
                    }
                    Ok(())
                }
                Answer::Error { message } => bail!(message),
                _ => bail!("unexpected answer"),
            }
        }
        LockCmd::Clear { config, target } => {
            let cfg = config.load()?;
            match session_command(
                &cfg,
                Command::LockClear {
                    target: target.clone(),
                },
            )? {
                Answer::Cleared { any } => {
                    println!(
                        "{}",
                        if any {
                            format!("cleared {target}")
                        } else {
                            format!("nothing to clear for {target}")
                        }
                    );
                    Ok(())
                }
                Answer::Error { message } => bail!(message),
                _ => bail!("unexpected answer"),
            }
        }
    }
}
