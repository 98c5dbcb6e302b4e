//! The export eligibility service.
//!
//! Dependencies run one way, top to bottom:
//!
//! - [`server`] (binds, builds the layers, owns the [`lifecycle`]) and
//!   [`config`];
//! - transports: [`grpc`] and [`http`] (JSON and server-sent events, on
//!   the same port), behind the tower [`layers`] (auth, metrics, limits),
//!   over the accepted connections ([`conns`]: limits, deadlines, the idle
//!   timeout) and the slow-consumer [`budget`];
//! - the application: [`app`] (what transports hold), [`reads`] (a
//!   [`reads::View`] answers every query at a resolved point), [`writes`]
//!   (the write pipeline and activations), [`watch`] (the change stream;
//!   it depends on the registry, never the reverse);
//! - the state: [`registry`] (immutable snapshots, swapped per commit);
//! - the domain: [`snapshot`], [`model`], [`limits`], [`error`] (the
//!   eligibility rule itself is the API crate's [`eligibility::decide`]);
//! - [`store`]: the `Store` trait, SQLite and Postgres.
#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod budget;
pub mod config;
pub mod conns;
pub mod console;
pub mod demo;
pub mod error;
pub mod exporter;
pub mod grpc;
pub mod http;
pub mod layers;
pub mod lifecycle;
pub mod limits;
pub mod model;
pub mod problem;
pub mod reads;
pub mod registry;
pub mod routes;
pub mod server;
pub mod snapshot;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod watch;
pub mod wire;
pub mod writes;
