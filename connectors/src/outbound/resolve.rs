//! The guarded DNS resolver and redirect policy of the providers' HTTP client.

use super::{Guard, MAX_REDIRECTS, Refusal};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;
use std::sync::Arc;

/// Resolves with tokio (the system resolver) and keeps only addresses the policy allows, so the
/// connection goes to an address that was checked: a name that resolves to 127.0.0.1 fails here
/// however it resolved when the URL was checked.
#[derive(Debug)]
pub(crate) struct GuardedResolver {
    guard: Arc<Guard>,
}

impl GuardedResolver {
    pub(crate) fn new(guard: Arc<Guard>) -> Self {
        GuardedResolver { guard }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let whole_name = guard.name_allowed(&host);
            let mut first_refusal = None;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| {
                    if whole_name {
                        return true;
                    }
                    match guard.check_ip(a.ip(), None) {
                        Ok(()) => true,
                        Err(r) => {
                            first_refusal.get_or_insert(r);
                            false
                        }
                    }
                })
                .collect();
            if kept.is_empty() {
                let reason = match first_refusal {
                    Some(r) => format!("host {host} resolves to {}", r.0),
                    None => format!("host {host} has no addresses"),
                };
                tracing::warn!(host = %host, "outbound call refused after DNS resolution");
                return Err(Box::new(Refusal(reason)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// Follows at most [`MAX_REDIRECTS`] redirects, each checked like the first URL.
pub(crate) fn redirect_policy(guard: Arc<Guard>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(Refusal(format!("more than {MAX_REDIRECTS} redirects")));
        }
        match guard.check(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(r) => {
                let host = attempt.url().host_str().unwrap_or("").to_owned();
                tracing::warn!(host = %host, "outbound redirect refused");
                attempt.error(Refusal(format!("redirect refused: {}", r.0)))
            }
        }
    })
}
