//! `serve`, `demo`, `init` and the hidden `sample-app`: starting a gateway, or
//! a starter folder for one.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};

use super::{generate_password, load_config, open_accounts, ConfigArg};
use crate::app::App;
use crate::config::{Config, UsersBackend};
use crate::users::User;

/// `serve`: the account database's schema made current, then the gateway.
pub fn serve(config: &ConfigArg) -> anyhow::Result<()> {
    let cfg = config.load()?;
    crate::server::check_listeners(&cfg, &[])?;
    let app = App::new(cfg, Some(config.path().to_path_buf())).context("cannot start")?;
    app.accounts
        .block_on(app.accounts.migrate())?
        .context("cannot prepare the account database")?;
    crate::server::run(Arc::new(app), Vec::new())
}

/// `sample-app`: the sample upstream on its own.
pub fn sample_app(listen: &str) -> anyhow::Result<()> {
    let mut server = pingora::server::Server::new(None).map_err(|e| anyhow!("{e}"))?;
    server.bootstrap();
    server.add_service(crate::sample_app::service(listen));
    server.run(pingora::server::RunArgs::default());
    Ok(())
}

const STARTER: &str = include_str!("../../docs/portcullis.example.toml");

pub fn init(dir: &Path) -> anyhow::Result<()> {
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
            // A new SQLite file is made here, private, as `init` means to (so the
            // gateway's "created it, empty" warning is for a path nobody made).
            if let Some(file) = crate::users::sql::sqlite_file(url).filter(|f| !f.exists()) {
                crate::users::file::create_private(&file)
                    .with_context(|| format!("cannot create {}", file.display()))?;
            }
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

pub fn demo(listen: &str, app_listen: &str) -> anyhow::Result<()> {
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
    crate::server::check_listeners(&cfg, &[app_listen])?;
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
    let ran = crate::server::run(
        Arc::new(app),
        vec![Box::new(crate::sample_app::service(app_listen))],
    );
    // The throw-away folder goes with the demo: its secrets and accounts don't stay
    // behind in the temp folder (attack pass).
    if std::fs::remove_dir_all(&dir).is_ok() {
        println!("removed {}", dir.display());
    }
    ran
}
