//! One running node, put together once ([`assemble`]): here, and only here, the server
//! decides whether it is one node on its own store or one of several sharing PostgreSQL
//! ([`crate::topology`]), and builds the services over that choice. The accept loop, each
//! connection, the call timer and the admin address run on a [`Node`]; the API handlers see
//! only the [`Services`] they are handed.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::entropy::Randomness;
use crate::key_ring::KeyRing;
use crate::observe::Observer;
use crate::relay::Reflector;
use crate::services::{
    Accounts, Calls, CallsParts, CodeLimits, LoginSettings, Services, Updates, Users,
};
use crate::sessions::{Sessions, SessionsParts};
use crate::{cache, data_dir, hub, limits, topology};

/// A node's parts.
pub struct Node {
    /// Its settings.
    pub config: Arc<Config>,
    /// What the API handlers use.
    pub services: Services,
    /// What connections share below the API.
    pub sessions: Sessions,
    /// Metrics and the call inspector.
    pub observe: Arc<Observer>,
    /// The time of day.
    pub clock: Clock,
    /// Random bytes (transport, handshake, message padding).
    pub entropy: Randomness,
}

/// Builds a node over `store` (and `cluster`, when several nodes share the database), with
/// `reflector` relaying the calls it confirms and `keys` offered in key exchanges.
#[allow(clippy::too_many_arguments)]
pub async fn assemble(
    config: Config,
    reflector: Option<Arc<Reflector>>,
    data: data_dir::DataDir,
    keys: Arc<KeyRing>,
    store: Arc<dyn store::Store>,
    cluster: Option<Arc<dyn store::Cluster>>,
    clock: Clock,
    entropy: Randomness,
) -> Result<Node, String> {
    let config = Arc::new(config);
    let observe = Arc::new(Observer::new(config.admin.inspector(), clock.now_ms()));
    let timeouts = config.calls.timeouts();
    let hub = Arc::new(hub::Hub::default());
    let cache = Arc::new(cache::Cache::default());
    let topology = match cluster {
        None => {
            let (topology, restored) = topology::Topology::single(
                store.clone(),
                timeouts,
                config.calls.recent_ended_calls,
                hub.clone(),
                clock.now_secs() as i32,
            )
            .await?;
            if !restored.is_empty() {
                tracing::info!(calls = restored.len(), "calls restored");
            }
            observe.inspector.restore(&restored, clock.now_ms());
            topology
        }
        Some(cluster) => topology::Topology::several(
            store.clone(),
            cluster,
            timeouts,
            hub.clone(),
            cache.clone(),
            clock,
        ),
    };
    let users = Arc::new(Users::new(
        store.clone(),
        cache,
        topology.delivery.clone(),
        hub.clone(),
        data.secret,
        clock,
    ));
    let updates = Arc::new(Updates::new(store.clone(), topology.delivery, clock));
    let calls = Arc::new(Calls::new(CallsParts {
        backend: topology.calls,
        users: users.clone(),
        updates: updates.clone(),
        observe: observe.clone(),
        settings: config.calls.clone(),
        reflector,
        turn: config.relay.turn.clone(),
        secret: data.secret,
        clock,
        entropy: entropy.clone(),
    }));
    let accounts = Accounts::new(
        store.clone(),
        LoginSettings {
            fixed_code: config.fixed_login_code.clone(),
            code_ttl_secs: config.login_code_ttl_secs,
            test_numbers: config.auth.test_numbers_on(config.listen.ip()),
            signup: config.auth.signup,
            delivery: crate::services::CodeDelivery::of(&config.auth),
        },
        CodeLimits::new(&config.auth, config.limits.exempt_loopback),
        entropy.clone(),
    );
    let passwords = crate::services::Passwords::new(store.clone(), entropy.clone());
    let sessions = Sessions::new(SessionsParts {
        keys,
        secret: data.secret,
        store,
        hub,
        limits: limits::Limits::new(config.limits.clone()),
        max_connections: config.max_connections,
    });
    Ok(Node {
        services: Services {
            calls,
            users,
            updates,
            accounts,
            passwords,
            config: config.clone(),
        },
        config,
        sessions,
        observe,
        clock,
        entropy,
    })
}
