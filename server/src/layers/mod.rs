//! Transport concerns as tower layers, applied once around every service
//! on the port (gRPC today; the HTTP surfaces reuse them): authentication
//! and authorization ([`auth`]), metrics and tracing spans ([`metrics`]),
//! and the limits that shed load and refuse oversized messages
//! ([`limits`]).

pub mod auth;
pub mod limits;
pub mod metrics;
