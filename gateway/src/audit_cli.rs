//! `gatehouse audit query …` and `gatehouse audit tail`: read the durable audit trail
//! straight from the store the config names (no running gateway needed), as JSON lines.

use crate::config::GatewayConfig;
use gatehouse_store::{AuditQuery, GovernanceStore, MAX_PAGE};
use std::io::Write;
use std::time::Duration;

/// The `audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Print matching events, newest first, one JSON object per line.
    Query(QueryArgs),
    /// Print events as they arrive (polls the store), oldest first.
    Tail {
        /// Poll interval in milliseconds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Events printed before following (the newest ones).
        #[arg(long, default_value_t = 10)]
        last: u32,
    },
}

/// Filters for `audit query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The principal's subject.
    #[arg(long)]
    pub actor: Option<String>,
    /// The principal's team.
    #[arg(long)]
    pub team: Option<String>,
    /// The sandbox id.
    #[arg(long)]
    pub sandbox: Option<String>,
    /// The action, e.g. sandbox:delete.
    #[arg(long)]
    pub action: Option<String>,
    /// allowed, denied or error.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Events at or after this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Events before this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

fn time(name: &str, v: Option<String>) -> anyhow::Result<Option<i64>> {
    v.map(|s| {
        chrono::DateTime::parse_from_rfc3339(&s)
            .map(|t| t.timestamp_millis())
            .map_err(|e| anyhow::anyhow!("--{name} '{s}' is not an RFC 3339 time: {e}"))
    })
    .transpose()
}

fn print(events: &[gatehouse_audit::AuditEvent]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for e in events {
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Runs an `audit` subcommand against the store of `cfg`.
pub fn run(cfg: &GatewayConfig, command: AuditCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = cfg.store.open().await?;
        store.prepare().await?;
        match command {
            AuditCommand::Query(a) => query(&*store, a).await,
            AuditCommand::Tail { interval_ms, last } => tail(&*store, interval_ms, last).await,
        }
    })
}

async fn query(store: &dyn GovernanceStore, a: QueryArgs) -> anyhow::Result<()> {
    let outcome = match a.outcome {
        Some(o) => Some(
            gatehouse_store::parse_outcome(&o)
                .ok_or_else(|| anyhow::anyhow!("--outcome must be allowed, denied or error"))?,
        ),
        None => None,
    };
    let mut q = AuditQuery {
        actor: a.actor,
        team: a.team,
        sandbox_id: a.sandbox,
        action: a.action,
        outcome,
        since_ms: time("since", a.since)?,
        until_ms: time("until", a.until)?,
        limit: 1,
        after: None,
    };
    let mut left = a.limit;
    while left > 0 {
        q.limit = left.min(MAX_PAGE);
        let page = store.query_audit(&q).await?;
        left -= page.events.len() as u32;
        print(&page.events)?;
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    Ok(())
}

async fn tail(store: &dyn GovernanceStore, interval_ms: u64, last: u32) -> anyhow::Result<()> {
    let mut q = AuditQuery::all();
    q.limit = last.clamp(1, MAX_PAGE);
    let mut first = store.query_audit(&q).await?.events;
    first.reverse();
    print(&first)?;
    let mut seen: std::collections::HashSet<String> = first.iter().map(|e| e.id.clone()).collect();
    let mut since = first.last().map(gatehouse_store::event_ms).unwrap_or(0);
    loop {
        tokio::time::sleep(Duration::from_millis(interval_ms.max(50))).await;
        // Events can arrive late (replayed from a spool): re-read from the newest time
        // printed and skip ids already printed.
        let mut q = AuditQuery::all();
        q.limit = MAX_PAGE;
        q.since_ms = Some(since);
        let mut fresh: Vec<_> = store
            .query_audit(&q)
            .await?
            .events
            .into_iter()
            .filter(|e| !seen.contains(&e.id))
            .collect();
        fresh.reverse();
        for e in &fresh {
            seen.insert(e.id.clone());
            since = since.max(gatehouse_store::event_ms(e));
        }
        print(&fresh)?;
        if seen.len() > 100_000 {
            seen.clear();
        }
    }
}
