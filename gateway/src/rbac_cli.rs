//! `gatehouse rbac list|bind|unbind`: manage the RBAC bindings in the configured store
//! directly (for bootstrap and break-glass; the API is `/gatehouse/v1/bindings`). Each
//! change is written to the audit table as well, with `auth_method = "cli"`.

use crate::config::GatewayConfig;
use gatehouse_audit::{AuditEvent, AuditPrincipal, Outcome};
use gatehouse_authz::RoleTable;
use gatehouse_store::{Binding, BindingKind, GovernanceStore};

/// The `rbac` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RbacCommand {
    /// Print every binding, one JSON object per line.
    List,
    /// Bind a subject or group to a role (replacing any binding it has).
    Bind {
        /// `subject` or `group`.
        kind: String,
        /// The subject or group name.
        name: String,
        /// A role of the role table.
        role: String,
        /// The team the binding sets.
        #[arg(long)]
        team: Option<String>,
    },
    /// Remove a binding.
    Unbind {
        /// `subject` or `group`.
        kind: String,
        /// The subject or group name.
        name: String,
    },
}

fn kind(s: &str) -> anyhow::Result<BindingKind> {
    BindingKind::parse(s).ok_or_else(|| anyhow::anyhow!("kind must be subject or group, not '{s}'"))
}

async fn audit(store: &dyn GovernanceStore, action: &str, target: String) -> anyhow::Result<()> {
    let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let e = AuditEvent {
        id: uuid::Uuid::new_v4().to_string(),
        time: gatehouse_audit::rfc3339_now(),
        request_id: String::new(),
        principal: AuditPrincipal {
            subject: format!("cli:{operator}"),
            team: None,
            role: None,
            auth_method: "cli".into(),
            key_name: None,
        },
        action: Some(action.into()),
        sandbox_id: Some(target),
        method: "CLI".into(),
        path: "gatehouse rbac".into(),
        status: 0,
        outcome: Outcome::Allowed,
        reason: None,
        duration_ms: 0.0,
        peer: None,
        on_behalf_of: None,
    };
    store.insert_audit(&[e]).await?;
    Ok(())
}

/// Runs an `rbac` subcommand against the store of `cfg`.
pub fn run(cfg: &GatewayConfig, command: RbacCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = cfg.store.open().await?;
        store.prepare().await?;
        match command {
            RbacCommand::List => {
                for b in store.list_bindings().await? {
                    println!("{}", serde_json::to_string(&b)?);
                }
            }
            RbacCommand::Bind {
                kind: k,
                name,
                role,
                team,
            } => {
                let table = RoleTable::load(&cfg.policy.path)?;
                anyhow::ensure!(table.has_role(&role), "unknown role '{role}'");
                let b = Binding {
                    kind: kind(&k)?,
                    name,
                    role,
                    team,
                    created_by: format!("cli:{}", std::env::var("USER").unwrap_or_default()),
                    created_ms: chrono::Utc::now().timestamp_millis(),
                };
                store.put_binding(&b).await?;
                audit(
                    &*store,
                    "binding:put",
                    format!("{}/{}", b.kind.as_str(), b.name),
                )
                .await?;
                println!("{}", serde_json::to_string(&b)?);
            }
            RbacCommand::Unbind { kind: k, name } => {
                let kind = kind(&k)?;
                anyhow::ensure!(
                    store.delete_binding(kind, &name).await?,
                    "no binding {k}/{name}"
                );
                audit(&*store, "binding:delete", format!("{k}/{name}")).await?;
            }
        }
        Ok(())
    })
}
