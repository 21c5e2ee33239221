//! Cluster mode at the edge: `aiops run --node NAME` on a NATS log turns the engine's stateful
//! processors into work units (runtime's [`aiops_runtime::cluster`]) and runs this node's
//! member loop; this module only gathers the settings, the log's coordination services and the
//! units the config enables.

use crate::config::Config;
use aiops_log::{Blobs, EventLog, Leases};
use aiops_runtime::cluster::{ClusterBoard, ClusterSettings, Member, TaskUnit, Unit};
use std::sync::Arc;
use tokio::sync::watch;

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The settings are invalid (the message names the setting).
    #[error("cluster: {0}")]
    Settings(String),
    /// The log has no coordination services: cluster mode needs a `nats://` log.
    #[error(
        "cluster: --node needs a NATS JetStream log (`--log nats://h1:p1,h2:p2,...`); the embedded log belongs to one process"
    )]
    NotClustered,
    /// The lease bucket or checkpoint store could not be opened.
    #[error("cluster: {0}")]
    Log(#[from] aiops_log::LogError),
}

/// This node's part of the cluster, while the engine assembles its units.
pub struct Cluster {
    settings: ClusterSettings,
    leases: Arc<dyn Leases>,
    /// Where every unit keeps its checkpoint.
    pub blobs: Arc<dyn Blobs>,
    /// What the member knows, for `GET /api/cluster`.
    pub board: Arc<ClusterBoard>,
    units: Vec<Arc<dyn Unit>>,
    dynamic: Option<watch::Receiver<Vec<Arc<dyn Unit>>>>,
}

impl Cluster {
    /// Opens the lease bucket and the checkpoint store when `cfg.cluster` names a node; `None`
    /// single-node.
    ///
    /// # Errors
    /// [`ClusterError`] naming what is wrong.
    pub async fn open(
        cfg: &Config,
        log: &Arc<dyn EventLog>,
    ) -> Result<Option<Cluster>, ClusterError> {
        if !cfg.cluster.enabled() {
            return Ok(None);
        }
        cfg.cluster.validate().map_err(ClusterError::Settings)?;
        let coord = log.coordination().ok_or(ClusterError::NotClustered)?;
        let leases = coord
            .leases(&cfg.cluster.lease_bucket, cfg.cluster.lease_ttl)
            .await?;
        let blobs = coord.blobs(&cfg.cluster.checkpoint_bucket).await?;
        tracing::info!(node = %cfg.cluster.node, lease_ttl = ?cfg.cluster.lease_ttl, "cluster mode");
        Ok(Some(Cluster {
            settings: cfg.cluster.clone(),
            leases,
            blobs,
            board: Arc::new(ClusterBoard::default()),
            units: Vec::new(),
            dynamic: None,
        }))
    }

    /// Adds a unit this node may own.
    pub fn add(&mut self, unit: Arc<dyn Unit>) {
        self.units.push(unit);
    }

    /// Adds the units `dynamic` lists as the list changes (the pipeline units, which follow
    /// the pipeline directory).
    pub fn set_dynamic(&mut self, dynamic: watch::Receiver<Vec<Arc<dyn Unit>>>) {
        self.dynamic = Some(dynamic);
    }

    /// The member loop over every added unit, until `shutdown`.
    pub fn run(
        self,
        log: Arc<dyn EventLog>,
        shutdown: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut member = Member::new(self.settings, log, self.leases, self.units, self.board);
        if let Some(d) = self.dynamic {
            member = member.with_dynamic(d);
        }
        member.run(shutdown)
    }
}

/// The `sources` work unit: its owner pulls every pull source — of the config file and of the
/// data source API, including ones created later — through [`DataSources::run_pulls`]; the other
/// nodes keep the definitions (the API answers everywhere) and pull nothing.
///
/// [`DataSources::run_pulls`]: crate::datasources::DataSources::run_pulls
pub fn sources_unit(ds: Arc<crate::datasources::DataSources>) -> TaskUnit {
    TaskUnit::new("sources", move |_log, stop| {
        let ds = ds.clone();
        Box::pin(async move {
            ds.run_pulls(stop).await;
            Ok(())
        })
    })
}
