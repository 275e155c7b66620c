//! Building and running the HTTP application, and the shared process scaffolding (signals,
//! the metrics side server of non-HTTP roles).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http::{self, AppState};

/// A bound HTTP server, ready to run. Binding happens in [`Application::build`] so tests can ask
/// for port 0 and read the real port before serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
}

impl Application {
    pub async fn build(state: AppState) -> anyhow::Result<Self> {
        let addr = SocketAddr::new(state.settings.host, state.settings.port);
        let listener = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let port = listener.local_addr()?.port();
        crate::infra::telemetry::metrics_handle();
        let router = http::router(state);
        Ok(Application { listener, router, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `cancel` fires, then lets in-flight requests finish for at most `grace`.
    pub async fn run_until_stopped(self, cancel: CancellationToken, grace: Duration) -> anyhow::Result<()> {
        tracing::info!(port = self.port, "HTTP server listening");
        let server = axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(cancel.clone().cancelled_owned());
        let server = tokio::spawn(async move { server.await });
        tokio::pin!(server);
        tokio::select! {
            res = &mut server => return res?.map_err(Into::into),
            _ = cancel.cancelled() => {}
        }
        match tokio::time::timeout(grace, &mut server).await {
            Ok(res) => res?.map_err(Into::into),
            Err(_) => {
                tracing::warn!(
                    grace_s = grace.as_secs(),
                    "requests still running after the drain deadline; closing them"
                );
                server.abort();
                Ok(())
            }
        }
    }
}

/// Serves `/metrics` and `/health` on `METRICS_PORT` (every role; the server then keeps `/metrics`
/// off its main port).
pub async fn serve_metrics(
    port: u16,
    token: Option<secrecy::SecretString>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let router = Router::new()
        .route("/metrics", get(move |headers| http::health::metrics_for(token.clone(), headers)))
        .route("/health", get(move || async move { axum::Json(http::health::Health::since(started)) }));
    let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on METRICS_PORT {port}: {e}"))?;
    crate::infra::telemetry::metrics_handle();
    tracing::info!(port, "metrics endpoint listening");
    axum::serve(listener, router).with_graceful_shutdown(cancel.cancelled_owned()).await?;
    Ok(())
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
            _ = term => tracing::info!("SIGTERM received; shutting down"),
        }
        token.cancel();
    });
}
