//! The control socket (`secrets/control.sock`, mode 0600): how the CLI reaches a
//! running gateway, which matters for the memory store — its sessions live only
//! inside the gateway process. One JSON request line, one JSON answer line.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::app::App;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    SessionList {
        user: String,
    },
    /// `handle` = one session (handle prefix); none = all of the user's sessions.
    SessionRevoke {
        user: String,
        handle: Option<String>,
    },
    Reload,
    /// Re-read the users file now (the CLI sends this after changing it).
    ReloadUsers,
    LockList,
    /// Unlock an account (name) or forget a client's failures (address).
    LockClear {
        target: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SessionInfo {
    pub handle: String,
    pub factors: u8,
    pub created: u64,
    pub last_seen: u64,
    pub client: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Answer {
    Sessions { sessions: Vec<SessionInfo> },
    Revoked { count: usize },
    Locks { rows: Vec<crate::defense::LockRow> },
    Cleared { any: bool },
    Ok,
    Error { message: String },
}

pub async fn execute(app: &App, cmd: Command) -> Answer {
    match cmd {
        Command::Reload => {
            app.reload();
            return Answer::Ok;
        }
        Command::ReloadUsers => {
            app.force_reload_users();
            return Answer::Ok;
        }
        Command::LockList | Command::LockClear { .. } => {
            return execute_locks(&app.defense, cmd).await
        }
        _ => {}
    }
    execute_sessions(&app.sessions, cmd).await
}

/// The lock commands, against any store (the CLI uses this directly with Redis).
pub async fn execute_locks(defense: &crate::defense::Defense, cmd: Command) -> Answer {
    let err = |e: crate::store::StoreError| Answer::Error {
        message: e.to_string(),
    };
    match cmd {
        Command::LockList => match defense.list().await {
            Ok(rows) => Answer::Locks { rows },
            Err(e) => err(e),
        },
        Command::LockClear { target } => match defense.clear(&target).await {
            Ok(any) => {
                // A target that named nothing isn't written down: it may be what a
                // person typed into the identifier box, a password among it.
                let named = any || target.parse::<std::net::IpAddr>().is_ok();
                crate::audit::event(
                    defense.clock(),
                    "unlocked",
                    serde_json::json!({
                        "target": named.then_some(&target),
                        "by": "operator",
                        "had_state": any,
                    }),
                );
                Answer::Cleared { any }
            }
            Err(e) => err(e),
        },
        _ => Answer::Error {
            message: "not a lock command".into(),
        },
    }
}

/// The session commands, against any store (the CLI uses this directly with Redis).
pub async fn execute_sessions(sessions: &crate::session::Sessions, cmd: Command) -> Answer {
    let err = |e: crate::store::StoreError| Answer::Error {
        message: e.to_string(),
    };
    match cmd {
        Command::SessionList { user } => match sessions.list(&user.to_ascii_lowercase()).await {
            Ok(list) => Answer::Sessions {
                sessions: list
                    .into_iter()
                    .map(|(h, r)| SessionInfo {
                        handle: h,
                        factors: r.factors,
                        created: r.created,
                        last_seen: r.last_seen,
                        client: r.client,
                    })
                    .collect(),
            },
            Err(e) => err(e),
        },
        Command::SessionRevoke { user, handle } => {
            let user = user.to_ascii_lowercase();
            let r = match handle {
                Some(h) => sessions.revoke_one(&user, &h).await,
                None => sessions.revoke_user(&user).await,
            };
            match r {
                Ok(count) => {
                    crate::audit::event(
                        sessions.clock(),
                        "sessions_revoked",
                        serde_json::json!({ "user": user, "count": count }),
                    );
                    Answer::Revoked { count }
                }
                Err(e) => err(e),
            }
        }
        Command::Reload | Command::ReloadUsers | Command::LockList | Command::LockClear { .. } => {
            Answer::Error {
                message: "needs the running gateway".into(),
            }
        }
    }
}

pub async fn serve(app: Arc<App>, stream: UnixStream) {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(r).take(64 * 1024);
    use tokio::io::AsyncReadExt;
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
    let answer = match serde_json::from_str::<Command>(&line) {
        Ok(cmd) => execute(&app, cmd).await,
        Err(e) => Answer::Error {
            message: format!("bad command: {e}"),
        },
    };
    let mut out = serde_json::to_string(&answer).unwrap_or_else(|_| "{}".into());
    out.push('\n');
    let _ = w.write_all(out.as_bytes()).await;
}

/// Sends one command to a running gateway.
pub async fn send(socket: &std::path::Path, cmd: &Command) -> anyhow::Result<Answer> {
    let stream = UnixStream::connect(socket).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the running gateway at {} ({e}); with store.backend = \"memory\" sessions live \
             inside the gateway, so it must be running",
            socket.display()
        )
    })?;
    let (r, mut w) = stream.into_split();
    let mut line = serde_json::to_string(cmd)?;
    line.push('\n');
    w.write_all(line.as_bytes()).await?;
    let mut answer = String::new();
    BufReader::new(r).read_line(&mut answer).await?;
    Ok(serde_json::from_str(&answer)?)
}
