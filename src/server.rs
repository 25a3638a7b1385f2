//! Starting the server: open the store, build the services, bind the
//! federation and client listeners, serve until told to stop.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use warp::Filter;

use crate::{
    accounts::{profiles::ProfileService, AccountService},
    admin,
    config::Config,
    delivery::{outbox::Outbox, sender::Sender},
    e2ee::E2eeService,
    edus::EduService,
    federation,
    http_util::{cors, recover},
    inbound::{admission::Admission, receiver::Receiver, stats::InboundStats},
    keys::KeyService,
    listener::{serve, Listening},
    net::https::HttpsClient,
    peers::Peers,
    rooms::{
        directory::DirectoryService, hierarchy::HierarchyService, history::HistoryService,
        ingest::IngestService, membership::MembershipService, RoomService,
    },
    services::{ServiceSet, Services},
    store::{OpenError, Store},
    sync::SyncService,
};

pub async fn run(config: Config) -> Result<(), String> {
    crate::store::identity::precheck(&config.data_dir, config.server_name.as_str())?;
    let store = Store::open(&config.data_dir).map_err(|e| match e {
        OpenError::Locked => format!(
            "{} is in use by another hearth process",
            config.data_dir.display()
        ),
        other => other.to_string(),
    })?;
    let min_free = config.limits.min_free_disk_mib * 1024 * 1024;
    store.check_disk(min_free).map_err(|e| {
        format!(
            "cannot see the free space of {}: {e}",
            config.data_dir.display()
        )
    })?;
    crate::backup::after_restore(&store)?;
    let token = admin::load_or_create_token(&config.data_dir)?;
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Some(TlsAcceptor::from(Arc::new(
            crate::net::tls::server_config(cert, key)?,
        ))),
        _ => None,
    };
    let listening = Listening::new(&config.limits);
    let services = build(&config, &store, token).await?;
    let well_known = Arc::new(config.well_known.clone());
    let federation_routes = federation::routes::routes(services.clone())
        .or(federation::routes::well_known::routes(well_known.clone()))
        .unify()
        .recover(recover);
    let client_routes = cors::preflight()
        .or(admin::routes(services.clone()))
        .unify()
        .or(crate::client::routes(services.clone()))
        .unify()
        .or(federation::routes::well_known::routes(well_known))
        .unify()
        .or(crate::metrics::route(
            services.sender.clone(),
            services.inbound.clone(),
            listening.connections.clone(),
            store.free_space(),
            services.appservices.clone(),
            config.metrics.enabled,
        ))
        .unify()
        .recover(recover)
        .map(cors::allow);

    let federation_listener = bind(config.listen.federation, "listen.federation").await?;
    let client_listener = bind(config.listen.client, "listen.client").await?;
    tracing::info!(
        server_name = %config.server_name,
        federation = %federation_listener.local_addr().map_err(|e| e.to_string())?,
        tls = tls.is_some(),
        client = %client_listener.local_addr().map_err(|e| e.to_string())?,
        key_id = %services.keys.own_keys().current_id,
        "hearth is listening"
    );
    // The background tasks (ARCHITECTURE.md, "Startup order").
    tokio::select! {
        _ = services.sender.clone().run() => {}
        _ = services.edus.run_presence_timers() => {}
        _ = services.edus.run_typing_timers() => {}
        _ = prune_old_records(store.clone()) => {}
        _ = services.media.run_retention() => {}
        _ = services.delayed.run() => {}
        _ = services.push.clone().run() => {}
        _ = services.appservices.clone().run() => {}
        _ = watch_disk(store.clone(), min_free) => {}
        _ = crate::backup::schedule::run(services.backups.clone(), config.backup.clone()) => {}
        _ = serve(federation_listener, tls, federation_routes, listening.clone()) => {}
        _ = serve(client_listener, None, client_routes, listening) => {}
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    store.flush().await.map_err(|e| e.to_string())
}

/// Builds every service once, in the order ARCHITECTURE.md gives, and
/// takes in what a previous run left: partial joins resume in the
/// background, staged transactions are taken in before any listener opens.
async fn build(config: &Config, store: &Store, token: String) -> Result<Services, String> {
    let appservices = Arc::new(crate::config::appservices::Appservices::load(
        &config.appservice,
        &config.server_name,
    )?);
    let client = Arc::new(HttpsClient::new(config)?);
    client
        .backoff()
        .attach(store.destinations.clone())
        .map_err(|e| e.to_string())?;
    let keys = Arc::new(
        KeyService::new(config, store.clone(), client.clone()).map_err(|e| e.to_string())?,
    );
    let outbound_ready = Arc::new(tokio::sync::Notify::new());
    let rooms = Arc::new(
        RoomService::new(
            config.server_name.clone(),
            config.rooms.default_version.clone(),
            store,
            keys.clone(),
            outbound_ready.clone(),
        )
        .with_appservices(appservices.clone()),
    );
    let peers = Arc::new(Peers::new(keys.clone(), client.clone()));
    let membership = Arc::new(MembershipService::new(
        rooms.clone(),
        peers.clone(),
        config.rooms.partial_state_joins,
    ));
    crate::rooms::partial::fetch::resume(&rooms, &peers)
        .await
        .map_err(|e| e.message)?;
    let sender = Sender::new(
        store.outbound.clone(),
        rooms.clone(),
        peers.clone(),
        client.clone(),
        outbound_ready.clone(),
        Duration::from_secs(config.federation.catch_up_after_secs),
    );
    let outbox = Outbox::new(
        config.server_name.clone(),
        store.outbound.clone(),
        store.rooms.clone(),
        outbound_ready,
    );
    let edus = Arc::new(EduService::new(
        rooms.clone(),
        store.edus.clone(),
        outbox.clone(),
        store.accounts.clone(),
        store.e2ee.clone(),
    ));
    let accounts = Arc::new(
        AccountService::new(
            config.server_name.clone(),
            store.accounts.clone(),
            &config.limits,
            &config.auth,
        )
        .with_appservices(appservices.clone()),
    );
    accounts
        .create_appservice_senders()
        .await
        .map_err(|e| e.message)?;
    let e2ee = Arc::new(E2eeService::new(
        store.e2ee.clone(),
        store.accounts.clone(),
        rooms.clone(),
        peers.clone(),
        outbox,
    ));
    let directory = Arc::new(DirectoryService::new(
        rooms.clone(),
        peers.clone(),
        store.aliases.clone(),
        store.public_rooms.clone(),
    ));
    let inbound = Arc::new(InboundStats::default());
    let receiver = Arc::new(Receiver::new(
        Arc::new(IngestService::new(rooms.clone(), peers.clone())),
        edus.clone(),
        rooms.clone(),
        store.transactions.clone(),
        inbound.clone(),
    ));
    receiver.resume().map_err(|e| e.to_string())?;
    Ok(Services::new(ServiceSet {
        profiles: Arc::new(ProfileService::new(
            accounts.clone(),
            rooms.clone(),
            peers.clone(),
        )),
        hierarchy: Arc::new(HierarchyService::new(
            rooms.clone(),
            directory.clone(),
            peers.clone(),
        )),
        media: Arc::new(crate::media::MediaService::new(crate::media::Setup {
            config,
            store,
            peers: peers.clone(),
            client: client.clone(),
        })?),
        voip: Arc::new(config.voip.clone()),
        delayed: Arc::new(crate::delayed::DelayedEvents::new(
            rooms.clone(),
            store.delayed.clone(),
        )),
        appservices: Arc::new(crate::appservices::AppserviceService::new(
            config,
            appservices.clone(),
            store,
            (rooms.clone(), accounts.clone()),
            &client,
        )?),
        push: Arc::new(crate::push::PushService::new(
            config,
            store.pushers.clone(),
            rooms.clone(),
            &client,
        )?),
        reports: Arc::new(crate::reports::ReportService::new(
            store.reports.clone(),
            rooms.clone(),
            accounts.clone(),
        )),
        key_backups: Arc::new(crate::e2ee::backup::KeyBackups::new(
            store.key_backup.clone(),
        )),
        history: Arc::new(HistoryService::new(rooms.clone(), peers)),
        sync: Arc::new(SyncService::new(
            rooms.clone(),
            edus.clone(),
            e2ee.clone(),
            store.accounts.clone(),
            store.edus.clone(),
        )),
        admission: Admission::new(
            config.federation.requests_per_server,
            config.federation.waiting_per_server,
            inbound.clone(),
        ),
        registration: Arc::new(config.registration.clone()),
        admin_token: token.into(),
        strangers: Default::default(),
        user_limits: Arc::new(crate::services::UserLimits::new(
            &config.limits,
            appservices.clone(),
        )),
        backups: crate::backup::BackupService::new(
            store.clone(),
            config.server_name.as_str(),
            config.backup.kib_per_sec,
        ),
        keys,
        client,
        rooms,
        membership,
        directory,
        accounts,
        edus,
        e2ee,
        sender,
        receiver,
        inbound,
    }))
}

/// How often the free disk space is sampled: writing the margin
/// (`limits.min_free_disk_mib`) takes a Pi's SD card far longer.
const DISK_EVERY: Duration = Duration::from_millis(250);

/// Samples the free space for good, refusing writes while it is short.
async fn watch_disk(store: Store, min_free: u64) {
    let mut failing = false;
    loop {
        tokio::time::sleep(DISK_EVERY).await;
        match store.check_disk(min_free) {
            Ok(_) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot see the free disk space");
            }
            Err(_) => {}
        }
    }
}

/// How long answers to transactions and to-device message IDs are kept.
const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How long notifications are listed by `GET /notifications` (as
/// Synapse keeps its push actions).
const NOTIFICATIONS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

/// Every hour, forgets idempotency records older than a day and
/// notifications older than 30 days.
async fn prune_old_records(store: Store) {
    loop {
        tokio::time::sleep(PRUNE_EVERY).await;
        let now = crate::time::now_ms();
        let cutoff = now.saturating_sub(IDEMPOTENCY_WINDOW.as_millis() as u64);
        let listed_since = now.saturating_sub(NOTIFICATIONS_KEPT.as_millis() as u64);
        let store = store.clone();
        let pruned = tokio::task::spawn_blocking(move || {
            let records = store.prune_idempotency_records(cutoff)?;
            let notifications = store.rooms.prune_notifications(listed_since)?;
            Ok::<_, crate::store::StoreError>((records, notifications))
        });
        match pruned.await {
            Ok(Ok((records, notifications))) => {
                tracing::debug!(records, notifications, "pruned old records")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "pruning old records failed"),
            Err(e) => tracing::warn!(error = %e, "pruning old records panicked"),
        }
    }
}

async fn bind(addr: SocketAddr, name: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{name}: cannot listen on {addr}: {e}"))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
