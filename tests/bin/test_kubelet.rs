//! `gatehouse-test-kubelet KUBECONFIG [INSTANCE]`: the tests' stand-in kubelet as a
//! process, for `GATEHOUSE_RUNTIME=kubernetes make up` on the local API-server-only
//! cluster. DEV-ONLY: it runs no containers; it binds the backend's pods to a fake Node,
//! reports them Running on a 127.0.0.0/8 address and answers HTTP on their ports (see
//! `harness/kubelet.rs`).

use anyhow::Context;
use gatehouse_tests::k8s::client_from;
use gatehouse_tests::kubelet::TestKubelet;
use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let kubeconfig = PathBuf::from(
        args.next()
            .context("usage: gatehouse-test-kubelet KUBECONFIG [INSTANCE]")?,
    );
    let instance = args.next().unwrap_or_else(|| "default".into());
    let client = client_from(&kubeconfig).await?;
    let _kubelet = TestKubelet::start(client, &instance, "gatehouse-dev-node").await?;
    eprintln!("gatehouse-test-kubelet: playing kubelet for pods of instance '{instance}' (DEV-ONLY: no containers run)");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
