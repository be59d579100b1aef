//! `user ...`: accounts in the configured backend (users file or database).
//! A change is recorded in the account's history and, where it takes access
//! away, ends the account's sessions now.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;

use super::password::{new_password, policy_for};
use super::session::end_sessions;
use super::{with_accounts, ConfigArg};
use crate::config::Config;
use crate::users::store::Imported;
use crate::users::{normalize_email, normalize_name, normalize_phone, Status, User};

#[derive(Subcommand)]
pub enum UserCmd {
    Add {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        phone: Option<String>,
        /// Comma-separated.
        #[arg(long)]
        groups: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    Show {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
    Disable {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
    Enable {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
    Delete {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
    /// Set a new password (stdin with --password-stdin, else generated); ends the user's sessions.
    SetPassword {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Clear the account's second factors and end its sessions.
    #[command(name = "reset-2fa")]
    Reset2fa {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
    /// Suspend an account: it can't sign in, and is told why after a correct password.
    Suspend {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Close an account: it can't sign in, and is told so after a correct password.
    Close {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
    /// Copy accounts from a users file into the configured backend (idempotent).
    Import {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        from: PathBuf,
    },
    /// Write every account of the configured backend to a users file.
    Export {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        to: PathBuf,
    },
}

/// Changes one account from the CLI and records it in the account's history.
fn change_user(
    cfg: &Config,
    name: &str,
    kind: &'static str,
    detail: String,
    change: impl FnOnce(&mut User) -> Result<(), crate::users::ProfileError> + Send + 'static,
) -> anyhow::Result<Arc<User>> {
    let name = name.to_ascii_lowercase();
    with_accounts(cfg, move |a| {
        Box::pin(async move {
            let u = a.modify(&name, change).await?;
            if let Err(e) = a.record(&name, kind, "cli", &detail).await {
                eprintln!("note: change saved, but not recorded in the account's history: {e}");
            }
            Ok(u)
        })
    })
}

/// `user add`: a new account, refused when any of its identifiers is taken
/// (by the database's unique indexes, also against a concurrent `user add`).
fn user_add(
    cfg: &Config,
    name: &str,
    email: &str,
    phone: Option<&str>,
    groups: Option<&str>,
    display_name: Option<String>,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let name = normalize_name(name)?;
    let email = normalize_email(email)?;
    let phone = phone.map(normalize_phone).transpose()?.unwrap_or_default();
    let groups: Vec<String> = groups
        .unwrap_or_default()
        .split(',')
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .collect();
    let draft = User {
        name: name.clone(),
        email: email.clone(),
        phone: phone.clone(),
        display_name: display_name.clone().unwrap_or_default(),
        ..User::default()
    };
    let (pw, generated) = new_password(password_stdin, policy_for(cfg, &draft))?;
    let hash = crate::auth::password::hash_now_with(&pw, cfg.password.argon2)?;
    let user = User {
        name: name.clone(),
        display_name: display_name.unwrap_or_default(),
        email,
        phone,
        groups,
        password: hash,
        ..Default::default()
    };
    let n = name.clone();
    with_accounts(cfg, move |a| {
        Box::pin(async move {
            a.create(user).await?;
            let _ = a.record(&n, "created", "cli", "").await;
            Ok(())
        })
    })
    .map_err(|e| anyhow!("user {name:?} not added: {e}"))?;
    println!("added user {name}");
    if generated {
        println!("initial password: {pw}");
    }
    Ok(())
}

fn when(unix: u64) -> String {
    if unix == 0 {
        return "-".into();
    }
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
        .to_string()
}

/// `user show`: an account, its status, factors, last sign-in and recent events.
fn user_show(cfg: &Config, name: &str) -> anyhow::Result<()> {
    let n = name.to_ascii_lowercase();
    let (u, events) = with_accounts(cfg, move |a| {
        Box::pin(async move {
            let u = a.get(&n).await?;
            let ev = a.events(&n, 20).await?;
            Ok((u, ev))
        })
    })?;
    let u = u.ok_or_else(|| anyhow!("no user named {name:?}"))?;
    let status = match u.status() {
        Status::Suspended(r) => format!("suspended ({r})"),
        s => s.word().to_string(),
    };
    println!("name: {}\ndisplay name: {}\nemail: {}\nphone: {}\ngroups: {}\nstatus: {}\npassword set: {}",
        u.name, u.display_name, u.email, u.phone, u.groups.join(","),
        status, !u.password.is_empty());
    println!(
        "authenticator app: {}\nbackup codes left: {}\ntwo-step verification required: {}",
        if u.has_totp() {
            format!("enrolled {}", when(u.totp_enrolled_at))
        } else {
            "none".into()
        },
        u.backup_codes.len(),
        if cfg.otp.required_for(&u.groups) {
            "yes"
        } else {
            "no"
        }
    );
    let last = events
        .iter()
        .find(|e| e.kind == "signin_ok" || e.kind == "password_ok")
        .map(|e| format!("{} from {}", when(e.at), e.client))
        .unwrap_or_else(|| "never".into());
    println!("last sign-in: {last}");
    // Factor metadata: when each second factor was last used (from the history).
    for method in ["totp", "backup", "email", "sms", "voice"] {
        if let Some(e) = events
            .iter()
            .find(|e| e.kind == "signin_ok" && e.detail.ends_with(&format!("method={method}")))
        {
            println!("{method} last used: {}", when(e.at));
        }
    }
    println!("recent events:");
    if events.is_empty() {
        println!("  (none)");
    }
    for e in &events {
        println!("  {}\t{}\t{}\t{}", when(e.at), e.kind, e.client, e.detail);
    }
    Ok(())
}

/// `user import`: every account of a users file into the configured backend; a
/// conflict is reported for its account and the rest go on.
fn user_import(cfg: &Config, from: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(from).with_context(|| format!("cannot read {}", from.display()))?;
    let users = crate::users::file::parse_users(&text)
        .map_err(|e| anyhow!("{} is not a users file: {e}", from.display()))?;
    let total = users.len();
    // A password must arrive hashed (argon2, as `hash-password` prints it): a plain
    // one would replace a working hash with something no sign-in can match (attack
    // pass). Such an account is refused and left as it is.
    let (users, unhashed): (Vec<User>, Vec<User>) = users
        .into_iter()
        .partition(|u| u.password.is_empty() || crate::auth::password::readable(&u.password));
    let (counts, problems) = with_accounts(cfg, move |a| {
        Box::pin(async move {
            let mut counts = [0usize; 3];
            let mut problems: Vec<String> = unhashed
                .iter()
                .map(|u| {
                    format!(
                        "{}: password is not an argon2 hash (hash it with `portcullis hash-password`)",
                        u.name
                    )
                })
                .collect();
            let names: Vec<String> = users.iter().map(|u| u.name.clone()).collect();
            for (name, r) in names.iter().zip(a.import_many(users).await?) {
                match r {
                    Ok(Imported::Created) => counts[0] += 1,
                    Ok(Imported::Updated) => counts[1] += 1,
                    Ok(Imported::Unchanged) => counts[2] += 1,
                    Err(e) => problems.push(format!("{name}: {e}")),
                }
            }
            Ok((counts, problems))
        })
    })?;
    println!(
        "imported {total} account(s): {} created, {} updated, {} unchanged, {} refused",
        counts[0],
        counts[1],
        counts[2],
        problems.len()
    );
    for p in &problems {
        eprintln!("refused {p}");
    }
    if !problems.is_empty() {
        bail!("{} account(s) not imported (see above)", problems.len());
    }
    Ok(())
}

/// `user export`: every account to a users file (written atomically, owner-only).
fn user_export(cfg: &Config, to: &Path) -> anyhow::Result<()> {
    // Replaces an earlier export (or an empty file), never anything else: a mistyped
    // `--to` must not overwrite the config or another file (attack pass).
    if let Ok(text) = std::fs::read_to_string(to) {
        if !text.trim().is_empty() && crate::users::file::parse_users(&text).is_err() {
            bail!(
                "{} exists and is not a users file: not overwritten (export to a new file)",
                to.display()
            );
        }
    } else if to.exists() {
        bail!("{} exists and can't be read: not overwritten", to.display());
    }
    let users = with_accounts(cfg, |a| Box::pin(async move { a.list().await }))?;
    let n = users.len();
    crate::users::file::write_all(to, &users)?;
    println!("exported {n} account(s) to {}", to.display());
    Ok(())
}

fn set_status(cfg: &Config, name: &str, word: &'static str, reason: &str) -> anyhow::Result<()> {
    let r = reason.to_string();
    let detail = if reason.is_empty() {
        word.to_string()
    } else {
        format!("{word}: {reason}")
    };
    change_user(cfg, name, "status_changed", detail, move |u| {
        u.set_status(word, &r)
    })?;
    Ok(())
}

/// The config argument of any `user` subcommand.
#[cfg(test)]
pub(super) fn config_of(cmd: UserCmd) -> ConfigArg {
    match cmd {
        UserCmd::Add { config, .. }
        | UserCmd::List { config }
        | UserCmd::Show { config, .. }
        | UserCmd::Disable { config, .. }
        | UserCmd::Enable { config, .. }
        | UserCmd::Delete { config, .. }
        | UserCmd::SetPassword { config, .. }
        | UserCmd::Reset2fa { config, .. }
        | UserCmd::Suspend { config, .. }
        | UserCmd::Close { config, .. }
        | UserCmd::Import { config, .. }
        | UserCmd::Export { config, .. } => config,
    }
}

pub fn run(cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Add {
            config,
            name,
            email,
            phone,
            groups,
            display_name,
            password_stdin,
        } => user_add(
            &config.load()?,
            &name,
            &email,
            phone.as_deref(),
            groups.as_deref(),
            display_name,
            password_stdin,
        ),
        UserCmd::List { config } => user_list(&config.load()?),
        UserCmd::Show { config, name } => user_show(&config.load()?, &name),
        UserCmd::Disable { config, name } => user_status(&config, &name, "disabled", ""),
        UserCmd::Suspend {
            config,
            name,
            reason,
        } => {
            if reason.trim().is_empty() || reason.chars().any(char::is_control) {
                bail!("--reason must be a non-empty line of text");
            }
            user_status(&config, &name, "suspended", &reason)
        }
        UserCmd::Close { config, name } => user_status(&config, &name, "closed", ""),
        UserCmd::Enable { config, name } => user_status(&config, &name, "active", ""),
        UserCmd::Delete { config, name } => user_delete(&config.load()?, &name),
        UserCmd::SetPassword {
            config,
            name,
            password_stdin,
        } => user_set_password(&config.load()?, &name, password_stdin),
        UserCmd::Reset2fa { config, name } => user_reset_2fa(&config.load()?, &name),
        UserCmd::Import { config, from } => user_import(&config.load()?, &from),
        UserCmd::Export { config, to } => user_export(&config.load()?, &to),
    }
}

fn user_list(cfg: &Config) -> anyhow::Result<()> {
    let users = with_accounts(cfg, |a| Box::pin(async move { a.list().await }))?;
    for u in users {
        let status = u.status();
        println!(
            "{}\t{}\t{}\t{}{}",
            u.name,
            u.email,
            u.phone,
            u.groups.join(","),
            if status == Status::Active {
                String::new()
            } else {
                format!("\t{}", status.word())
            }
        );
    }
    Ok(())
}

/// `user disable|suspend|close|enable`: anything but `active` also ends the
/// account's sessions now.
fn user_status(
    config: &ConfigArg,
    name: &str,
    status: &'static str,
    reason: &str,
) -> anyhow::Result<()> {
    let cfg = config.load()?;
    set_status(&cfg, name, status, reason)?;
    let done = match status {
        "active" => "enabled",
        other => other,
    };
    println!("{done} {name}");
    if status != "active" {
        end_sessions(&cfg, name);
    }
    Ok(())
}

fn user_delete(cfg: &Config, name: &str) -> anyhow::Result<()> {
    let n = name.to_ascii_lowercase();
    let gone = with_accounts(cfg, move |a| {
        Box::pin(async move {
            let gone = a.delete(&n).await?;
            if gone {
                let _ = a.record(&n, "deleted", "cli", "").await;
            }
            Ok(gone)
        })
    })?;
    if !gone {
        bail!("no user named {name:?}");
    }
    println!("deleted {name}");
    end_sessions(cfg, name);
    Ok(())
}

fn user_set_password(cfg: &Config, name: &str, password_stdin: bool) -> anyhow::Result<()> {
    let lower = name.to_ascii_lowercase();
    let current = with_accounts(cfg, move |a| Box::pin(async move { a.get(&lower).await }))?
        .ok_or_else(|| anyhow!("no user named {name:?}"))?;
    let (pw, generated) = new_password(password_stdin, policy_for(cfg, &current))?;
    let hash = crate::auth::password::hash_now_with(&pw, cfg.password.argon2)?;
    change_user(cfg, name, "password_changed", String::new(), move |user| {
        user.password = hash;
        user.credentials_version += 1;
        Ok(())
    })?;
    println!("password of {name} changed");
    if generated {
        println!("new password: {pw}");
    }
    end_sessions(cfg, name);
    Ok(())
}

fn user_reset_2fa(cfg: &Config, name: &str) -> anyhow::Result<()> {
    change_user(
        cfg,
        name,
        "factors_changed",
        "reset by operator".into(),
        |user| {
            user.totp.clear();
            user.backup_codes.clear();
            user.totp_enrolled_at = 0;
            user.factors_version += 1;
            user.credentials_version += 1;
            Ok(())
        },
    )?;
    crate::audit::event(
        &crate::clock::SystemClock,
        "2fa_reset",
        serde_json::json!({ "user": name, "by": "cli" }),
    );
    println!(
        "second factors of {name} cleared (authenticator app, backup codes, remembered browsers)"
    );
    end_sessions(cfg, name);
    Ok(())
}
