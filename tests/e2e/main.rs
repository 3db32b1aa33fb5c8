//! The cross-process end-to-end suite as one test binary: real binaries against a real
//! Docker engine, PostgreSQL, the dev IdP, Chromium and a real kube-apiserver. One module
//! per scenario file (run one with `cargo test -p gatehouse-tests --test e2e <module>::`).
//!
//! One binary, not one per file: each links the whole gateway and backend, so a binary per
//! scenario cost a link of the same code twenty-six times over (and its disk).

mod adversarial;
mod backend_docker;
mod backend_faults;
mod backend_kubernetes;
mod compose_stack;
mod console_browser;
mod console_governance;
mod fuzz_corpus;
mod gateway_backend;
mod gateway_events;
mod gateway_limits;
mod gateway_oidc;
mod gateway_store;
mod gateway_upstream;
mod governance_rules;
mod idp_smoke;
mod ops;
mod ops_drills;
mod platform_controller;
mod platform_controller_kubernetes;
mod python_sdk;
mod replicas;
mod sandbox_identity;
mod sandbox_identity_kubernetes;
mod sdk_quickstart;
mod store_conformance;
mod upstream_smoke;
