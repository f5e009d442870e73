//! Composition root: the one place that picks concrete implementations (SQLite
//! store, order backend, candle embedder) and wires them into the HTTP server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::answer::{Core, CoreOptions};
use crate::bot::Bot;
use crate::channels::messenger::{Messenger, MessengerSettings};
use crate::channels::outbox::Outbox;
use crate::channels::zalo::{Zalo, ZaloSettings};
use crate::channels::Adapters;
use crate::config::{Config, OrdersBackendKind};
use crate::http::AppState;
use crate::knowledge::KnowledgeBase;
use crate::llm::{Llm, Prompts};
use crate::orders::{OrderBackend, ShopifyBackend, SqliteOrders};
use crate::reload::{Cause, Reloader};
use crate::service::ConversationService;
use crate::store::Store;

fn order_backend(cfg: &Config, store: &Store) -> Arc<dyn OrderBackend> {
    match cfg.orders.backend {
        OrdersBackendKind::Sqlite => Arc::new(SqliteOrders::new(store.pool())),
        OrdersBackendKind::Shopify => Arc::new(ShopifyBackend::new(
            cfg.orders.base_url.as_deref().unwrap_or_default(),
            cfg.orders.token.as_deref().unwrap_or_default(),
            &cfg.orders.token_header,
            Duration::from_millis(cfg.orders.timeout_ms),
        )),
    }
}

/// The configured platform adapters (Messenger, Zalo OA).
async fn adapters(cfg: &Config, store: &Store) -> anyhow::Result<Adapters> {
    let mut out = Adapters::default();
    let timeout = Duration::from_millis(cfg.outbox.timeout_ms);
    let or_empty = |v: &Option<String>| v.clone().unwrap_or_default();
    if cfg.messenger.enabled() {
        let m = &cfg.messenger;
        out.insert(Arc::new(Messenger::new(
            MessengerSettings {
                app_secret: or_empty(&m.app_secret),
                verify_token: or_empty(&m.verify_token),
                page_token: or_empty(&m.page_token),
                api_base: m.api_base.clone(),
            },
            timeout,
        )));
        tracing::info!("Messenger channel enabled at /webhooks/messenger");
    }
    if cfg.zalo.enabled() {
        let z = &cfg.zalo;
        let stored = store.channel_tokens("zalo").await?;
        out.insert(Arc::new(Zalo::new(
            ZaloSettings {
                app_id: or_empty(&z.app_id),
                oa_secret: or_empty(&z.oa_secret),
                app_secret: z.app_secret.clone(),
                access_token: or_empty(&z.access_token),
                refresh_token: z.refresh_token.clone(),
                api_base: z.api_base.clone(),
                oauth_base: z.oauth_base.clone(),
                max_event_age: Duration::from_secs(z.max_event_age_secs),
            },
            stored,
            Some(store.clone()),
            timeout,
        )));
        tracing::info!("Zalo OA channel enabled at /webhooks/zalo");
    }
    Ok(out)
}

/// SIGHUP rebuilds the knowledge index (the usual way to tell a daemon to reread).
async fn reload_on_hangup(reloader: Arc<Reloader>, bot: Arc<Bot>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        let _ = reloader.reload(&bot, Cause::Signal).await;
    }
}

/// Runs `cskh serve` until SIGINT/SIGTERM.
pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    // Fail fast on broken knowledge files and prompts, before taking the port.
    KnowledgeBase::load(&cfg.knowledge)?;
    let prompts = Prompts::load(Some(&cfg.llm.prompts))?;
    let llm = cfg.llm.enabled().then_some(prompts);
    let store = Store::open(&cfg.data).await?;
    let state = AppState {
        admin_token: cfg.admin_token.clone(),
        api_token: cfg.api_token(),
        ..AppState::default()
    };
    if state.api_token.is_none() {
        tracing::warn!(
            "no api_token (CSKH_API_TOKEN) is set: the `api` channel is open, anyone who \
             can reach this port can write as any api user_id and read its history \
             (/api/v1/history); set one unless only trusted clients can connect"
        );
    }
    let listener = tokio::net::TcpListener::bind((cfg.bind, cfg.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", cfg.bind, cfg.port))?;
    let addr = listener.local_addr()?;
    tracing::info!("cskh listening on http://{addr}");

    let loading = {
        let state = state.clone();
        let cfg = cfg.clone();
        let store = store.clone();
        tokio::spawn(async move {
            let opts = CoreOptions {
                knowledge: cfg.knowledge.clone(),
                data: Some(cfg.data.clone()),
                model: cfg.model.clone(),
                cache: cfg.embed_cache.clone(),
                params: cfg.retrieval.clone(),
            };
            let (core, opts, fingerprint) = tokio::task::spawn_blocking(move || {
                // Taken before the files are read: an edit during loading is seen.
                let fingerprint = crate::reload::fingerprint(&opts.knowledge);
                Core::load(&opts).map(|core| (core, opts, fingerprint))
            })
            .await??;
            let reloader = Arc::new(Reloader::new(opts, &core, fingerprint));
            let mut bot = Bot::new(
                Arc::new(core),
                order_backend(&cfg, &store),
                cfg.dialogue.clone(),
            )?
            .with_utc_offset(cfg.handoff.offset());
            let llm = llm.map(|p| Arc::new(Llm::new(cfg.llm.clone(), p)));
            if let Some(l) = &llm {
                bot = bot.with_llm(l.clone());
                tracing::info!(
                    model = cfg.llm.model.as_deref().unwrap_or_default(),
                    "LLM enabled for grounded answers and hand-off summaries"
                );
            }
            let adapters = adapters(&cfg, &store).await?;
            let wake = Arc::new(tokio::sync::Notify::new());
            let mut service =
                ConversationService::new(store.clone(), Arc::new(bot), cfg.handoff.clone())
                    .with_channels(adapters.clone(), wake.clone());
            if let Some(l) = llm {
                service = service.with_llm(l);
            }
            let service = service
                .with_metrics(state.metrics.clone())
                .with_reloader(reloader.clone());
            let service = Arc::new(service);
            if cfg.knowledge_watch_secs > 0 {
                let every = Duration::from_secs(cfg.knowledge_watch_secs);
                tokio::spawn(reloader.clone().watch(service.bot().clone(), every));
                tracing::info!(
                    every_secs = cfg.knowledge_watch_secs,
                    "watching the knowledge files: edits are live without a restart"
                );
            }
            tokio::spawn(reload_on_hangup(reloader, service.bot().clone()));
            if !adapters.is_empty() {
                let outbox = Arc::new(Outbox::new(
                    store,
                    adapters,
                    cfg.outbox.clone(),
                    wake,
                    service.queue_sender(),
                ));
                tokio::spawn(outbox.run());
            }
            // Voice first: setting the service is what makes `/ready` say ready, and
            // every route must be up by then.
            let _ = state.voice.set(Arc::new(crate::voice::Voice::new(
                service.clone(),
                cfg.voice.clone(),
            )));
            let _ = state.service.set(service.clone());
            tracing::info!("ready: knowledge index and model loaded");
            let recovered = service.recover().await?;
            if recovered > 0 {
                tracing::info!(
                    recovered,
                    "answered messages stored before the last shutdown"
                );
            }
            anyhow::Ok(())
        })
    };
    let mut server =
        tokio::spawn(async move { crate::http::serve(listener, state, shutdown_signal()).await });
    tokio::select! {
        r = &mut server => {
            r.context("server task panicked")?.context("server failed")?;
            tracing::info!("shut down before loading finished");
            return Ok(());
        }
        r = loading => {
            r.context("loading task panicked")?.context("cannot load the answering core")?;
        }
    }
    server
        .await
        .context("server task panicked")?
        .context("server failed")?;
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
