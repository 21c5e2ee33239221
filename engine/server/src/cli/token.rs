//! `aiops token create|list|revoke`: API tokens in DATA_DIR/auth/tokens.json, or — when the
//! config's log is NATS and names a cluster node (`[cluster] node`), or a cluster has run on
//! that NATS (its lease bucket exists) — in the cluster's token bucket, so the change reaches
//! every node at once.

use super::fmt_ms;
use aiops_read::auth::TokenStore;
use aiops_server::config::Config;
use aiops_server::{clock, read, server};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::sync::Arc;

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
    let store = open(&cfg)?;
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

/// The token store the nodes of this config use: the cluster's bucket (see the module) or the
/// data directory's file.
fn open(cfg: &Config) -> Result<Arc<TokenStore>> {
    let nats = matches!(server::log_spec(cfg)?, aiops_log::LogSpec::Nats(_));
    if !nats {
        return Ok(Arc::new(TokenStore::open(
            &read::tokens_path(&cfg.data_dir),
            &cfg.auth.tokens,
        )?));
    }
    let handle = tokio::runtime::Handle::try_current()
        .context("`aiops token` against a NATS log needs the async runtime")?;
    // The subcommand is synchronous; the cluster is asked from inside the runtime.
    tokio::task::block_in_place(|| handle.block_on(open_nats(cfg)))
}

async fn open_nats(cfg: &Config) -> Result<Arc<TokenStore>> {
    let log = server::open_log_for_reading(cfg).await?;
    let Some(coord) = log.coordination() else {
        bail!("the NATS log has no key-value buckets");
    };
    // A cluster has run here when its lease bucket exists (zero TTL: open, not create).
    let clustered = cfg.cluster.enabled()
        || coord
            .leases(&cfg.cluster.lease_bucket, std::time::Duration::ZERO)
            .await
            .is_ok();
    if !clustered {
        return Ok(Arc::new(TokenStore::open(
            &read::tokens_path(&cfg.data_dir),
            &cfg.auth.tokens,
        )?));
    }
    let kv = coord
        .kv(aiops_read::auth::TOKENS_BUCKET)
        .await
        .context("opening the cluster's token bucket")?;
    Ok(TokenStore::open_shared(kv, &cfg.auth.tokens).await?)
}
