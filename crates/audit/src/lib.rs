//! Audit events and their sinks for the Gatehouse gateway.
//!
//! The gateway records one [`AuditEvent`] per mutation and per denial from its logging
//! phase, through an [`AuditSink`]. Sinks never block that phase: [`FileSink`] and
//! [`StdoutSink`] queue events (bounded, 65536) for a writer task that writes one JSON
//! object per line and flushes; when the queue is full the event is dropped, counted
//! ([`AuditSink::dropped`]) and an error is logged. [`MemorySink`] keeps events for tests.
//!
//! Choose the sink with [`SinkConfig`] (`sink = "stdout"`, or `sink = "file"` plus
//! `path`) and open it with [`build`] inside a Tokio runtime.
//!
//! **No secrets, by construction.** The event type has no field for a header, cookie,
//! token, key or body, so none can ever be written; the path is written without its query
//! string. See [`event`](AuditEvent) for the exact fields.

mod config;
mod error;
mod event;
mod sink;

pub use config::{build, SinkConfig};
pub use error::AuditError;
pub use event::{path_without_query, rfc3339_now, AuditEvent, AuditPrincipal, OnBehalfOf, Outcome};
pub use sink::{
    AuditSink, FileSink, Flushing, MemorySink, StdoutSink, TeeSink, DEFAULT_CAPACITY, GATHER,
};
