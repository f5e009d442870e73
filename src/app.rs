//! Composition root: the one place that picks concrete implementations (SQLite
//! store, order backend, candle embedder) and wires them into the HTTP server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::answer::{Core, CoreOptions};
use crate::bot::Bot;
use crate::config::{Config, OrdersBackendKind};
use crate::http::AppState;
use crate::knowledge::KnowledgeBase;
use crate::orders::{OrderBackend, ShopifyBackend, SqliteOrders};
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

/// Runs `cskh serve` until SIGINT/SIGTERM.
pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    // Fail fast on broken knowledge files, before taking the port.
    KnowledgeBase::load(&cfg.knowledge)?;
    let store = Store::open(&cfg.data).await?;
    let state = AppState::default();
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
            let core = tokio::task::spawn_blocking(move || Core::load(&opts)).await??;
            let bot = Bot::new(
                Arc::new(core),
                order_backend(&cfg, &store),
                cfg.dialogue.clone(),
            )?;
            let service = Arc::new(ConversationService::new(
                store,
                Arc::new(bot),
                cfg.handoff.clone(),
            ));
            let _ = state.service.set(service);
            tracing::info!("ready: knowledge index and model loaded");
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
