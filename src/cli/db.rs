//! `db migrate`: create or upgrade the account database's schema.

use clap::Subcommand;

use super::{open_accounts, ConfigArg};

#[derive(Subcommand)]
pub enum DbCmd {
    /// Create or upgrade the account database's schema (`serve` does it too).
    Migrate {
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub fn run(cmd: DbCmd) -> anyhow::Result<()> {
    let DbCmd::Migrate { config } = cmd;
    let cfg = config.load()?;
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
