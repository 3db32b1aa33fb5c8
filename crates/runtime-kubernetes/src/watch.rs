//! State from watches, not polling: one kube-runtime reflector per namespace the driver
//! manages, selecting only this instance's pods. Reads are served from the reflectors'
//! stores, also while the API server is away; each namespace tracks whether its watch is
//! currently in sync.

use crate::labels;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, reflector, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

/// The reflector of one namespace.
struct Namespaced {
    namespace: String,
    store: Store<Pod>,
    in_sync: Arc<AtomicBool>,
}

/// The reflectors of every managed namespace.
pub(crate) struct Watches {
    list: Vec<Namespaced>,
    changed: signal::Sender<u64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Watches {
    /// Starts one reflector per namespace; they retry with backoff for as long as the
    /// driver lives.
    pub fn start(client: &Client, namespaces: &[String], instance: &str) -> Self {
        let (changed, _) = signal::channel(0u64);
        let selector = labels::managed_selector(instance);
        let mut list = Vec::new();
        let mut tasks = Vec::new();
        for ns in namespaces {
            let (store, writer) = reflector::store::<Pod>();
            let in_sync = Arc::new(AtomicBool::new(false));
            let api: Api<Pod> = Api::namespaced(client.clone(), ns);
            let stream = reflector(
                writer,
                watcher(api, watcher::Config::default().labels(&selector)).default_backoff(),
            );
            tasks.push(tokio::spawn(run(
                ns.clone(),
                stream,
                in_sync.clone(),
                changed.clone(),
            )));
            list.push(Namespaced {
                namespace: ns.clone(),
                store,
                in_sync,
            });
        }
        Self {
            list,
            changed,
            tasks,
        }
    }

    /// The pod `name` and its namespace, as last observed.
    pub fn find(&self, name: &str) -> Option<(String, Arc<Pod>)> {
        self.list.iter().find_map(|n| {
            n.store
                .get(&ObjectRef::new(name).within(&n.namespace))
                .map(|p| (n.namespace.clone(), p))
        })
    }

    /// The pod `name` in `namespace`, as last observed.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.list
            .iter()
            .find(|n| n.namespace == namespace)
            .and_then(|n| n.store.get(&ObjectRef::new(name).within(namespace)))
    }

    /// Whether every watch is listed and watching right now.
    pub fn all_in_sync(&self) -> bool {
        self.list.iter().all(|n| n.in_sync.load(Ordering::Relaxed))
    }

    /// Every pod observed, in every namespace.
    pub fn pods(&self) -> Vec<Arc<Pod>> {
        self.list.iter().flat_map(|n| n.store.state()).collect()
    }

    /// A receiver woken after every change any watch applied.
    pub fn subscribe(&self) -> signal::Receiver<u64> {
        self.changed.subscribe()
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Drives one reflector stream, recording whether it is in sync.
async fn run<S>(ns: String, stream: S, in_sync: Arc<AtomicBool>, changed: signal::Sender<u64>)
where
    S: futures_util::Stream<Item = Result<watcher::Event<Pod>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::InitDone)
            | Ok(watcher::Event::Apply(_))
            | Ok(watcher::Event::Delete(_)) => {
                if !in_sync.swap(true, Ordering::Relaxed) {
                    tracing::info!(namespace = %ns, "kubernetes pod watch in sync");
                }
            }
            Ok(watcher::Event::Init) | Ok(watcher::Event::InitApply(_)) => continue,
            Err(e) => {
                if in_sync.swap(false, Ordering::Relaxed) {
                    tracing::warn!(namespace = %ns, error = %e, "kubernetes pod watch lost; serving the last observed state");
                } else {
                    tracing::debug!(namespace = %ns, error = %e, "kubernetes pod watch still failing");
                }
            }
        }
        changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}
