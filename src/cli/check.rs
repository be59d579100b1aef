//! `check-config`: everything `serve` would refuse to start with, without
//! starting — the config, the secrets, the accounts, the templates — and the
//! warnings; `--explain` prints the `[defense]` ladder in numbers.

use anyhow::{anyhow, bail};

use super::{open_accounts, ConfigArg};
use crate::config::{Config, UsersBackend};

pub fn check_config(config: &ConfigArg, explain: bool) -> anyhow::Result<()> {
    // (A file that doesn't read as a config names all of its problems itself; the
    // rest can only be checked with the config in hand.)
    let cfg = config.load()?;
    // Every problem of each later part, all in one run (attack pass: each run named
    // only the first, and a second bad key file never at all).
    let mut problems: Vec<String> = crate::secrets::Secrets::problems(&cfg.secrets_dir)
        .iter()
        .map(ToString::to_string)
        .collect();
    // Checks assertion.key (and .previous.key) if present; `serve` creates a missing one.
    if let Err(e) = crate::assertion::Keys::load(&cfg.secrets_dir, false) {
        problems.push(e.to_string());
    }
    if let Err(e) = check_accounts(&cfg) {
        problems.push(format!("{e:#}"));
    }
    if let Err(e) = crate::portal::ui::Ui::load(&cfg.ui, &cfg.server.portal_prefix) {
        problems.push(format!("{e:#}"));
    }
    let mut warnings: Vec<String> = cfg.warnings();
    if let Some(dir) = &cfg.ui.locales {
        match crate::i18n::check_folder(dir) {
            Ok(w) => warnings.extend(w.into_iter().map(|w| format!("ui.locales: {w}"))),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} has problems:\n  {}",
            config.path().display(),
            problems.join("\n  ")
        );
    }
    // Warnings don't fail the check (exit code stays 0).
    for w in warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{}: ok ({} sites, {} rules)",
        config.path().display(),
        cfg.sites.len(),
        cfg.rules.len()
    );
    if explain {
        println!();
        print!("{}", crate::defense::explain::explain(&cfg.defense));
    }
    Ok(())
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
