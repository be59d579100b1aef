//! Command line: parses arguments and runs subcommands. `anyhow` lives here and
//! in `main` only.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use rand::Rng;

use crate::app::App;
use crate::config::UsersBackend;
use crate::config::{Config, StoreBackend};
use crate::control::{Answer, Command};
use crate::users::cache::Accounts;
use crate::users::store::{AccountError, Imported};
use crate::users::{normalize_email, normalize_name, normalize_phone, Status, User};

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
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a config file without starting.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
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

#[derive(Subcommand)]
pub enum UserCmd {
    Add {
        #[arg(long)]
        config: PathBuf,
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
        #[arg(long)]
        config: PathBuf,
    },
    Show {
        #[arg(long)]
        config: PathBuf,
        name: String,
    },
    Disable {
        #[arg(long)]
        config: PathBuf,
        name: String,
    },
    Enable {
        #[arg(long)]
        config: PathBuf,
        name: String,
    },
    Delete {
        #[arg(long)]
        config: PathBuf,
        name: String,
    },
    /// Set a new password (stdin with --password-stdin, else generated); ends the user's sessions.
    SetPassword {
        #[arg(long)]
        config: PathBuf,
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Clear the account's second factors and end its sessions.
    #[command(name = "reset-2fa")]
    Reset2fa {
        #[arg(long)]
        config: PathBuf,
        name: String,
    },
    /// Suspend an account: it can't sign in, and is told why after a correct password.
    Suspend {
        #[arg(long)]
        config: PathBuf,
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Close an account: it can't sign in, and is told so after a correct password.
    Close {
        #[arg(long)]
        config: PathBuf,
        name: String,
    },
    /// Copy accounts from a users file into the configured backend (idempotent).
    Import {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        from: PathBuf,
    },
    /// Write every account of the configured backend to a users file.
    Export {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum DbCmd {
    /// Create or upgrade the account database's schema (`serve` does it too).
    Migrate {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum SessionCmd {
    List {
        #[arg(long)]
        config: PathBuf,
        name: String,
    },
    /// End all of NAME's sessions, or one with --handle.
    Revoke {
        #[arg(long)]
        config: PathBuf,
        name: String,
        #[arg(long)]
        handle: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum LockCmd {
    /// Locked accounts (remaining time) and clients with failures (counts).
    List {
        #[arg(long)]
        config: PathBuf,
    },
    /// Unlock an account by NAME, or forget a client's failures by ADDRESS.
    Clear {
        #[arg(long)]
        config: PathBuf,
        target: String,
    },
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
        Cmd::Demo { listen, app_listen } => demo(&listen, &app_listen),
        Cmd::Init { dir } => init(&dir.unwrap_or_else(|| PathBuf::from("."))),
        Cmd::Serve { config } => {
            let cfg = load_config(&config)?;
            let app = App::new(cfg, Some(config)).context("cannot start")?;
            app.accounts
                .block_on(app.accounts.migrate())?
                .context("cannot prepare the account database")?;
            crate::server::run(Arc::new(app), Vec::new())
        }
        Cmd::Db {
            cmd: DbCmd::Migrate { config },
        } => {
            let cfg = load_config(&config)?;
            let accounts = open_accounts(&cfg)?;
            let pending = accounts.block_on(accounts.pending_migrations())??;
            accounts.block_on(accounts.migrate())??;
            if pending.is_empty() {
                println!("account schema up to date");
            } else {
                for m in pending {
                    println!("applied {m}");
                }
            }
            Ok(())
        }
        Cmd::CheckConfig { config, explain } => {
            let cfg = load_config(&config)?;
            crate::secrets::Secrets::load(&cfg.secrets_dir)?;
            // Checks assertion.key (and .previous.key) if present; `serve` creates a missing one.
            crate::assertion::Keys::load(&cfg.secrets_dir, false)?;
            check_accounts(&cfg)?;
            crate::portal::ui::Ui::load(&cfg.ui, &cfg.server.portal_prefix)?;
            // Warnings don't fail the check (exit code stays 0).
            for w in cfg.warnings() {
                eprintln!("warning: {w}");
            }
            if let Some(dir) = &cfg.ui.locales {
                for w in crate::i18n::check_folder(dir)? {
                    eprintln!("warning: ui.locales: {w}");
                }
            }
            println!(
                "{}: ok ({} sites, {} rules)",
                config.display(),
                cfg.sites.len(),
                cfg.rules.len()
            );
            if explain {
                println!();
                print!("{}", crate::defense::explain::explain(&cfg.defense));
            }
            Ok(())
        }
        Cmd::User { cmd } => user(cmd),
        Cmd::Session { cmd } => session(cmd),
        Cmd::Lock { cmd } => lock(cmd),
        Cmd::HashPassword => {
            let pw = read_password_stdin(|p| {
                (!p.is_empty())
                    .then_some(())
                    .ok_or_else(|| "the password is empty".to_string())
            })?;
            println!("{}", crate::auth::password::hash_now(&pw)?);
            Ok(())
        }
        Cmd::SampleApp { listen } => {
            let mut server = pingora::server::Server::new(None).map_err(|e| anyhow!("{e}"))?;
            server.bootstrap();
            server.add_service(crate::sample_app::service(&listen));
            server.run(pingora::server::RunArgs::default());
            Ok(())
        }
    }
}

fn read_password_stdin(check: impl Fn(&str) -> Result<(), String>) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let pw = line.strip_suffix('\n').unwrap_or(&line);
    let pw = pw.strip_suffix('\r').unwrap_or(pw).to_string();
    check(&pw).map_err(|e| anyhow!("{e}"))?;
    Ok(pw)
}

/// The password policy ([`crate::auth::password_policy`]) for `user`'s new password.
fn policy_for<'a>(cfg: &'a Config, user: &User) -> impl Fn(&str) -> Result<(), String> + 'a {
    use crate::auth::password_policy as policy;
    let service = [cfg.ui.title.as_str(), cfg.otp.totp_issuer.as_str()];
    let words = policy::personal_words(user, &service);
    let second = policy::has_second_factor(user);
    move |pw: &str| policy::check(&cfg.password, pw, None, second, &words).map_err(|r| r.message())
}

pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..16)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

fn new_password(
    stdin: bool,
    check: impl Fn(&str) -> Result<(), String>,
) -> anyhow::Result<(String, bool)> {
    if stdin {
        Ok((read_password_stdin(check)?, false))
    } else {
        Ok((generate_password(), true))
    }
}

pub fn open_accounts(cfg: &Config) -> anyhow::Result<Accounts> {
    Ok(Accounts::open(
        &cfg.users,
        Arc::new(crate::clock::SystemClock),
    )?)
}

/// `check-config`: the users file parses, or the database answers and its schema
/// is current.
fn check_accounts(cfg: &Config) -> anyhow::Result<()> {
    match &cfg.users.backend {
        UsersBackend::File(path) => {
            crate::users::file::load(path)?;
        }
        UsersBackend::Sql(_) => {
            let a = open_accounts(cfg)?;
            let pending = a
                .block_on(a.pending_migrations())?
                .map_err(|e| anyhow!("users: cannot reach the account database: {e}"))?;
            if !pending.is_empty() {
                bail!(
                    "users: the account database's schema is behind ({} migration(s) to apply: {}); run `portcullis db migrate`",
                    pending.len(),
                    pending.join(", ")
                );
            }
        }
    }
    Ok(())
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

/// Changes one account from the CLI and records it in the account's history.
fn change_user(
    cfg: &Config,
    name: &str,
    kind: &'static str,
    detail: String,
    change: impl FnOnce(&mut User) -> Result<(), String> + Send + 'static,
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
    let (counts, problems) = with_accounts(cfg, move |a| {
        Box::pin(async move {
            let mut counts = [0usize; 3];
            let mut problems = Vec::new();
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

fn user(cmd: UserCmd) -> anyhow::Result<()> {
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
            &load_config(&config)?,
            &name,
            &email,
            phone.as_deref(),
            groups.as_deref(),
            display_name,
            password_stdin,
        ),
        UserCmd::List { config } => user_list(&load_config(&config)?),
        UserCmd::Show { config, name } => user_show(&load_config(&config)?, &name),
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
        UserCmd::Delete { config, name } => user_delete(&load_config(&config)?, &name),
        UserCmd::SetPassword {
            config,
            name,
            password_stdin,
        } => user_set_password(&load_config(&config)?, &name, password_stdin),
        UserCmd::Reset2fa { config, name } => user_reset_2fa(&load_config(&config)?, &name),
        UserCmd::Import { config, from } => user_import(&load_config(&config)?, &from),
        UserCmd::Export { config, to } => user_export(&load_config(&config)?, &to),
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
    config: &Path,
    name: &str,
    status: &'static str,
    reason: &str,
) -> anyhow::Result<()> {
    let cfg = load_config(config)?;
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

/// Ends a user's sessions now; the gateway also refuses them as soon as it
/// re-reads the users file, so a failure here is reported but not fatal.
fn end_sessions(cfg: &Config, name: &str) {
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
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

fn session(cmd: SessionCmd) -> anyhow::Result<()> {
    match cmd {
        SessionCmd::List { config, name } => {
            let cfg = load_config(&config)?;
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
        } => {
            let cfg = load_config(&config)?;
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

fn lock(cmd: LockCmd) -> anyhow::Result<()> {
    match cmd {
        LockCmd::List { config } => {
            let cfg = load_config(&config)?;
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
            let cfg = load_config(&config)?;
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

const STARTER: &str = include_str!("../docs/portcullis.example.toml");

fn init(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cfg_path = dir.join("portcullis.toml");
    if cfg_path.exists() {
        println!("kept existing {}", cfg_path.display());
    } else {
        std::fs::write(&cfg_path, STARTER)?;
        println!("wrote {}", cfg_path.display());
    }
    let users = dir.join("users.toml");
    if users.exists() {
        println!("kept existing {}", users.display());
    } else {
        let mut f = crate::users::file::create_private(&users)?;
        f.write_all(b"# Portcullis accounts. Add with: portcullis user add --config portcullis.toml NAME --email E\n")?;
        println!("wrote {}", users.display());
    }
    for p in crate::secrets::Secrets::create_missing(&dir.join("secrets"))? {
        println!("created secret {}", p.display());
    }
    // The account database (SQLite by default) with its schema, so check-config passes.
    if let Ok(cfg) = Config::load(&cfg_path) {
        if let UsersBackend::Sql(url) = &cfg.users.backend {
            let a = open_accounts(&cfg)?;
            a.block_on(a.migrate())?.with_context(|| {
                format!(
                    "cannot create the account database {}",
                    crate::users::sql::shown_url(url)
                )
            })?;
            println!(
                "account database ready ({})",
                crate::users::sql::shown_url(url)
            );
        }
    }
    println!(
        "next: edit {} ([[site]]), add a user, then `portcullis serve --config {}`",
        cfg_path.display(),
        cfg_path.display()
    );
    Ok(())
}

fn demo(listen: &str, app_listen: &str) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("portcullis-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = listen.rsplit_once(':').map(|x| x.1).unwrap_or("8080");
    let config = format!(
        "# Written by `portcullis demo`.\n[server]\nlisten = \"{listen}\"\n\n[session]\nsecure = false\nidle_timeout = \"30m\"\n\n\
         [[site]]\nhost = \"127.0.0.1\"\nupstream = \"{app_listen}\"\n\n[[site]]\nhost = \"localhost\"\nupstream = \"{app_listen}\"\n\n\
         [[rule]]\npath = \"/public/\"\npolicy = \"bypass\"\n\n[[rule]]\npath = \"/secure/\"\npolicy = \"two_factor\"\n\n\
         [notify]\nbackend = \"file\"\nfile = \"outbox.jsonl\"\n\n\
         [users]\nbackend = \"sqlite\"\nurl = \"sqlite:accounts.db\"\n"
    );
    let cfg_path = dir.join("portcullis.toml");
    std::fs::write(&cfg_path, config)?;
    crate::secrets::Secrets::create_missing(&dir.join("secrets"))?;
    let cfg = load_config(&cfg_path)?;
    let pw = generate_password();
    let hash = crate::auth::password::hash_now(&pw)?;
    let app = App::new(cfg, Some(cfg_path.clone()))?;
    let demo = User {
        name: "demo".into(),
        display_name: "Demo User".into(),
        email: "demo@example.com".into(),
        phone: "+14155550100".into(),
        groups: vec!["demo".into()],
        password: hash,
        ..Default::default()
    };
    app.accounts.block_on(async {
        app.accounts.migrate().await?;
        app.accounts.import(demo).await
    })??;
    println!("Portcullis demo");
    println!("  open:     http://127.0.0.1:{port}/");
    println!("  sign in:  demo (or demo@example.com, or +1 415 555 0100)");
    println!("  password: {pw}");
    println!("  two-step: /secure/ needs a second factor; codes \"sent\" by email, SMS or voice");
    println!(
        "            are appended to {}",
        dir.join("outbox.jsonl").display()
    );
    println!("            set up an authenticator app at http://127.0.0.1:{port}/_auth/2fa/setup");
    println!("  config:   {}", cfg_path.display());
    println!("  stop with Ctrl-C");
    let _ = std::io::stdout().flush();
    crate::server::run(
        Arc::new(app),
        vec![Box::new(crate::sample_app::service(app_listen))],
    )
}
