//! The application: the registry with its read and write sides and the
//! change stream, as every transport sees it. Built by
//! [`crate::server::open`]; transports hold an `Arc<App>`. Every read is
//! orchestrated once in [`Queries`] (the writes in [`crate::writes::Writer`]),
//! so the transports only decode and encode.

pub mod queries;

pub use self::queries::{Asked, Queries};

use std::{sync::Arc, time::Duration};

use eligibility::Point;

use crate::{
    budget::Consumer,
    error::Result,
    lifecycle::Shutdown,
    limits::Limits,
    reads::View,
    registry::Registry,
    store::Store,
    watch::{Event, Hub, Origin, WatchConfig, WatchRequest},
    writes::Writer,
};

/// The registry, its writer and the watch hub, with the shutdown token
/// that ends the hub's streams.
pub struct App {
    /// The registry (reads resolve views here).
    pub registry: Arc<Registry>,
    /// The write side.
    pub writer: Writer,
    /// The change stream's hub.
    pub hub: Arc<Hub>,
    /// Every read, orchestrated for the transports.
    pub queries: Queries,
    shutdown: Shutdown,
}

impl App {
    /// Loads the registry from `store` and wires the hub to it.
    pub async fn open(store: Arc<dyn Store>, limits: Limits, watch: WatchConfig) -> Result<Arc<App>> {
        let shutdown = Shutdown::new();
        let hub = Arc::new(Hub::new(watch, shutdown.clone()));
        let registry = Registry::open(store, limits, hub.clone()).await?;
        Ok(Arc::new(App {
            writer: Writer::new(registry.clone()),
            queries: Queries::new(registry.clone()),
            registry,
            hub,
            shutdown,
        }))
    }

    /// The token that stops the application's streams and tasks.
    pub fn shutdown_token(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Ends every watch stream at once and signals background tasks to end
    /// (graceful shutdown, or a simulated crash in tests).
    pub fn shutdown(&self) {
        self.shutdown.trigger();
        self.hub.close();
    }

    /// The configured request limits.
    pub fn limits(&self) -> &Limits {
        self.registry.limits()
    }

    /// Resolves a read point (see [`Registry::view`]).
    pub async fn view(&self, point: Point, wait: Option<Duration>, at_field: &'static str) -> Result<View> {
        self.registry.view(point, wait, at_field).await
    }

    /// Opens a watch (see [`crate::watch::open`]).
    pub async fn watch<T, F>(
        &self,
        req: WatchRequest,
        origin: Origin,
        present: F,
    ) -> Result<impl futures_util::Stream<Item = T> + Send + use<T, F>>
    where
        T: Send + 'static,
        F: Fn(Event) -> T + Send + 'static,
    {
        crate::watch::open(&self.registry, &self.hub, req, origin, present).await
    }

    /// Opens a watch for a request that came in on one of the server's
    /// connections (its `extensions`), whatever its transport: the stream
    /// is accounted on that connection, and each event is presented by
    /// `present` (given the store id) in the transport's form.
    pub async fn open_watch<T, F>(
        &self,
        req: WatchRequest,
        extensions: &http::Extensions,
        present: F,
    ) -> Result<Watching<impl futures_util::Stream<Item = T> + Send + use<T, F>>>
    where
        T: Send + 'static,
        F: Fn(&Event, &str) -> T + Send + 'static,
    {
        let conn = crate::conns::info(extensions);
        let consumer = conn.map(|c| Arc::new(c.ledger.consumer()));
        let origin = Origin { peer: conn.and_then(|c| c.tcp.remote_addr()), consumer: consumer.clone() };
        let store_id = self.registry.store_id();
        let events = self.watch(req, origin, move |e| present(&e, &store_id)).await?;
        Ok(Watching { events, consumer })
    }
}

/// An open watch: its events (a stream of what the transport sends), and
/// its account on its connection (absent when the request came from no
/// connection the server accepted, e.g. an embedder's own transport).
pub struct Watching<S> {
    /// The events, presented for the transport.
    pub events: S,
    /// The stream's account: the body counts what it hands over, and learns
    /// from it why the events ended and where the client resumes.
    pub consumer: Option<Arc<Consumer>>,
}
