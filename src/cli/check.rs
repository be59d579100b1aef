//! `check-config`: everything `serve` would refuse to start with, without
//! starting — the config, the secrets, the accounts, the templates — and the
//! warnings; `--explain` prints the `[defense]` ladder in numbers.

use anyhow::{anyhow, bail};

use super::{open_accounts, ConfigArg};
use crate::config::{Config, UsersBackend};

pub fn check_config(config: &ConfigArg, explain: bool) -> anyhow::Result<()> {
    let cfg = config.load()?;
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
