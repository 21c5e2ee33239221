//! `aiops token create|list|revoke`: API tokens in DATA_DIR/auth/tokens.json.

use super::fmt_ms;
use aiops_server::config::Config;
use aiops_server::{clock, read};
use anyhow::{Result, bail};
use clap::Subcommand;

/// The subcommands of `aiops token`.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token and print it once.
    Create {
        /// Who or what uses it (e.g. grafana, ci, alice).
        #[arg(long)]
        name: String,
        /// ingest (push data only), viewer (read), operator (silences, acknowledge, run and
        /// approve workflows), admin (configuration, tokens).
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// List tokens (ids, names, roles — never the tokens).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The id `list` shows.
        id: String,
    },
}

/// `aiops token …`.
///
/// # Errors
/// The token store cannot be read or written, a role is unknown, or the id to revoke is.
pub fn token(cmd: TokenCmd, cfg: Config) -> Result<()> {
    let store =
        aiops_read::auth::TokenStore::open(&read::tokens_path(&cfg.data_dir), &cfg.auth.tokens)?;
    match cmd {
        TokenCmd::Create { name, role } => {
            let role: aiops_read::auth::Role = role.parse()?;
            let (rec, token) = store.create(&name, role, clock::now_ms())?;
            // The token alone goes to standard output, so `$(aiops token create …)` captures it.
            eprintln!(
                "created token {} ({}, role {}); it is shown only now:",
                rec.id,
                rec.name,
                rec.role.as_str()
            );
            println!("{token}");
        }
        TokenCmd::List => {
            for t in store.list() {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.role.as_str(),
                    t.origin,
                    fmt_ms(Some(t.created_ms)),
                    t.name
                );
            }
        }
        TokenCmd::Revoke { id } => {
            if !store.revoke(&id)? {
                bail!("no token {id} (see `aiops token list`)");
            }
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}
