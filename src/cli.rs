//! Command line: parses arguments and runs subcommands. `anyhow` lives here and
//! in `main` only.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use rand::Rng;

use crate::app::App;
use crate::config::{Config, StoreBackend};
use crate::control::{Answer, Command};
use crate::users::{normalize_email, normalize_name, normalize_phone, Identifier, User};

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
    /// Manage accounts in the users file.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
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
            crate::server::run(Arc::new(app), Vec::new())
        }
        Cmd::CheckConfig { config, explain } => {
            let cfg = load_config(&config)?;
            crate::secrets::Secrets::load(&cfg.secrets_dir)?;
            // Checks assertion.key (and .previous.key) if present; `serve` creates a missing one.
            crate::assertion::Keys::load(&cfg.secrets_dir, false)?;
            crate::users::file::load(&cfg.users_file)?;
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

/// Changes the users file, then asks a running gateway (if any) to re-read it at
/// once instead of at its next poll, so a disabled account is refused immediately.
fn update_users<T>(
    cfg: &Config,
    f: impl FnOnce(&mut Vec<User>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let out = crate::users::file::update(&cfg.users_file, f)??;
    let sock = crate::server::control_socket(cfg);
    if sock.exists() {
        if let Ok(rt) = runtime() {
            let _ = rt.block_on(crate::control::send(&sock, &Command::ReloadUsers));
        }
    }
    Ok(out)
}

fn find_mut<'a>(users: &'a mut [User], name: &str) -> anyhow::Result<&'a mut User> {
    let n = name.to_ascii_lowercase();
    users
        .iter_mut()
        .find(|u| u.name == n)
        .ok_or_else(|| anyhow!("no user named {name:?}"))
}

/// `user add`: a new account, refused when any of its identifiers is taken.
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
    update_users(cfg, |users| {
        let d = crate::users::Directory::new(users.clone()).map_err(|e| anyhow!(e))?;
        for id in [
            Some(Identifier::Name(name.clone())),
            Some(Identifier::Email(email.clone())),
            (!phone.is_empty()).then(|| Identifier::Phone(phone.clone())),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(owner) = d.owner_of(&id) {
                bail!(
                    "{} already belongs to user {owner:?}",
                    id.key().split_once(':').map(|x| x.1).unwrap_or("")
                );
            }
        }
        users.push(User {
            name: name.clone(),
            display_name: display_name.clone().unwrap_or_default(),
            email: email.clone(),
            phone: phone.clone(),
            groups: groups.clone(),
            password: hash.clone(),
            ..Default::default()
        });
        Ok(())
    })?;
    println!("added user {name}");
    if generated {
        println!("initial password: {pw}");
    }
    Ok(())
}

/// `user show`: an account and its two-step status.
fn user_show(cfg: &Config, name: &str) -> anyhow::Result<()> {
    let d = crate::users::file::load(&cfg.users_file)?;
    let u = d
        .get(name)
        .ok_or_else(|| anyhow!("no user named {name:?}"))?;
    println!("name: {}\ndisplay name: {}\nemail: {}\nphone: {}\ngroups: {}\nstatus: {}\npassword set: {}",
        u.name, u.display_name, u.email, u.phone, u.groups.join(","),
        if u.disabled { "disabled" } else { "enabled" }, !u.password.is_empty());
    println!(
        "authenticator app: {}\nbackup codes left: {}\ntwo-step verification required: {}",
        if u.has_totp() { "enrolled" } else { "none" },
        u.backup_codes.len(),
        if cfg.otp.required_for(&u.groups) {
            "yes"
        } else {
            "no"
        }
    );
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
        UserCmd::List { config } => {
            let cfg = load_config(&config)?;
            let d = crate::users::file::load(&cfg.users_file)?;
            for u in d.users() {
                println!(
                    "{}\t{}\t{}\t{}{}",
                    u.name,
                    u.email,
                    u.phone,
                    u.groups.join(","),
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
            Ok(())
        }
        UserCmd::Show { config, name } => user_show(&load_config(&config)?, &name),
        UserCmd::Disable { config, name } => {
            let cfg = load_config(&config)?;
            update_users(&cfg, |u| {
                find_mut(u, &name)?.disabled = true;
                Ok(())
            })?;
            println!("disabled {name}");
            end_sessions(&cfg, &name);
            Ok(())
        }
        UserCmd::Enable { config, name } => {
            let cfg = load_config(&config)?;
            update_users(&cfg, |u| {
                find_mut(u, &name)?.disabled = false;
                Ok(())
            })?;
            println!("enabled {name}");
            Ok(())
        }
        UserCmd::Delete { config, name } => {
            let cfg = load_config(&config)?;
            update_users(&cfg, |u| {
                let n = name.to_ascii_lowercase();
                let before = u.len();
                u.retain(|x| x.name != n);
                if u.len() == before {
                    bail!("no user named {name:?}");
                }
                Ok(())
            })?;
            println!("deleted {name}");
            end_sessions(&cfg, &name);
            Ok(())
        }
        UserCmd::SetPassword {
            config,
            name,
            password_stdin,
        } => {
            let cfg = load_config(&config)?;
            let current = crate::users::file::load(&cfg.users_file)?
                .get(&name.to_ascii_lowercase())
                .map(|u| (**u).clone())
                .ok_or_else(|| anyhow!("no user named {name:?}"))?;
            let (pw, generated) = new_password(password_stdin, policy_for(&cfg, &current))?;
            let hash = crate::auth::password::hash_now_with(&pw, cfg.password.argon2)?;
            update_users(&cfg, |u| {
                let user = find_mut(u, &name)?;
                user.password = hash.clone();
                user.credentials_version += 1;
                Ok(())
            })?;
            println!("password of {name} changed");
            if generated {
                println!("new password: {pw}");
            }
            end_sessions(&cfg, &name);
            Ok(())
        }
        UserCmd::Reset2fa { config, name } => {
            let cfg = load_config(&config)?;
            update_users(&cfg, |u| {
                let user = find_mut(u, &name)?;
                user.totp.clear();
                user.backup_codes.clear();
                user.factors_version += 1;
                user.credentials_version += 1;
                Ok(())
            })?;
            crate::audit::event(
                &crate::clock::SystemClock,
                "2fa_reset",
                serde_json::json!({ "user": name, "by": "cli" }),
            );
            println!("second factors of {name} cleared (authenticator app, backup codes, remembered browsers)");
            end_sessions(&cfg, &name);
            Ok(())
        }
    }
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
         [notify]\nbackend = \"file\"\nfile = \"outbox.jsonl\"\n"
    );
    let cfg_path = dir.join("portcullis.toml");
    std::fs::write(&cfg_path, config)?;
    crate::secrets::Secrets::create_missing(&dir.join("secrets"))?;
    let cfg = load_config(&cfg_path)?;
    let pw = generate_password();
    let hash = crate::auth::password::hash_now(&pw)?;
    update_users(&cfg, |u| {
        u.clear();
        u.push(User {
            name: "demo".into(),
            display_name: "Demo User".into(),
            email: "demo@example.com".into(),
            phone: "+14155550100".into(),
            groups: vec!["demo".into()],
            password: hash,
            ..Default::default()
        });
        Ok(())
    })?;
    let app = App::new(cfg, Some(cfg_path.clone()))?;
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
