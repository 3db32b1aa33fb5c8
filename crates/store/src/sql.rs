//! The SQL both implementations share. SQLite and PostgreSQL accept the same statements
//! here (`$n` parameters, `ON CONFLICT`), so [`governance_sql!`] expands one body per
//! backend with its concrete pool type; only the migrations differ. Every value is a bound
//! parameter; filters are appended with `QueryBuilder::push_bind`.

/// Columns of `audit_events`, in insert order.
pub(crate) const AUDIT_COLUMNS: &str =
    "id, at_ms, request_id, actor, team, role, auth_method, key_name, action, \
     sandbox_id, method, path, status, outcome, reason, duration_ms, peer, tenant_team, tenant_owner";

/// Most audit rows in one `INSERT` (19 parameters each: 9,500 parameters, below SQLite's
/// 32,766 and PostgreSQL's 65,535).
pub(crate) const AUDIT_ROWS_PER_INSERT: usize = 500;

pub(crate) const KEY_COLUMNS: &str =
    "id, hash, prefix, name, subject, team, role, created_ms, expires_ms, last_used_ms, revoked_ms";

/// Implements [`crate::GovernanceStore`] for `$store` (a struct with a `pool:
/// sqlx::Pool<$db>` field).
macro_rules! governance_sql {
    ($store:ty, $db:ty, $kind:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::GovernanceStore for $store {
            fn kind(&self) -> &'static str {
                $kind
            }

            async fn prepare(&self) -> Result<(), $crate::StoreError> {
                <$store>::migrate(self).await
            }

            async fn ping(&self) -> Result<(), $crate::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn insert_audit(
                &self,
                events: &[gatehouse_audit::AuditEvent],
            ) -> Result<u64, $crate::StoreError> {
                // One multi-row statement per chunk: a statement per row costs a round
                // trip to the database (SQLite: its worker thread) each.
                let mut tx = self.pool.begin().await?;
                let mut new = 0;
                for chunk in events.chunks($crate::sql::AUDIT_ROWS_PER_INSERT) {
                    let mut b = sqlx::QueryBuilder::<$db>::new(format!(
                        "INSERT INTO audit_events ({}) ",
                        $crate::sql::AUDIT_COLUMNS
                    ));
                    b.push_values(chunk, |mut row, e| {
                        row.push_bind(&e.id)
                            .push_bind($crate::audit_query::event_ms(e))
                            .push_bind(&e.request_id)
                            .push_bind(&e.principal.subject)
                            .push_bind(&e.principal.team)
                            .push_bind(&e.principal.role)
                            .push_bind(&e.principal.auth_method)
                            .push_bind(&e.principal.key_name)
                            .push_bind(&e.action)
                            .push_bind(&e.sandbox_id)
                            .push_bind(&e.method)
                            .push_bind(gatehouse_audit::path_without_query(&e.path))
                            .push_bind(i64::from(e.status))
                            .push_bind(e.outcome.as_str())
                            .push_bind(&e.reason)
                            .push_bind(e.duration_ms)
                            .push_bind(&e.peer)
                            .push_bind(e.on_behalf_of.as_ref().and_then(|t| t.team.as_deref()))
                            .push_bind(e.on_behalf_of.as_ref().and_then(|t| t.owner.as_deref()));
                    });
                    b.push(" ON CONFLICT (id) DO NOTHING");
                    // Not kept as a prepared statement: each batch size is its own
                    // statement, and a cache of large ones held ~75 MB.
                    new += b
                        .build()
                        .persistent(false)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(new)
            }

            async fn query_audit(
                &self,
                q: &$crate::AuditQuery,
            ) -> Result<$crate::AuditPage, $crate::StoreError> {
                if q.limit == 0 || q.limit > $crate::audit_query::MAX_PAGE {
                    return Err($crate::StoreError::Invalid(format!(
                        "limit must be between 1 and {}",
                        $crate::audit_query::MAX_PAGE
                    )));
                }
                let mut b = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM audit_events WHERE 1 = 1",
                    $crate::sql::AUDIT_COLUMNS
                ));
                let text_filters = [
                    ("actor", &q.actor),
                    ("team", &q.team),
                    ("sandbox_id", &q.sandbox_id),
                    ("action", &q.action),
                ];
                for (column, value) in text_filters {
                    if let Some(v) = value {
                        b.push(format_args!(" AND {column} = "));
                        b.push_bind(v.clone());
                    }
                }
                if let Some(o) = q.outcome {
                    b.push(" AND outcome = ");
                    b.push_bind(o.as_str());
                }
                if let Some(t) = q.since_ms {
                    b.push(" AND at_ms >= ");
                    b.push_bind(t);
                }
                if let Some(t) = q.until_ms {
                    b.push(" AND at_ms < ");
                    b.push_bind(t);
                }
                if let Some(c) = &q.after {
                    b.push(" AND (at_ms < ");
                    b.push_bind(c.at_ms);
                    b.push(" OR (at_ms = ");
                    b.push_bind(c.at_ms);
                    b.push(" AND id < ");
                    b.push_bind(c.id.clone());
                    b.push("))");
                }
                b.push(" ORDER BY at_ms DESC, id DESC LIMIT ");
                b.push_bind(i64::from(q.limit) + 1);
                let rows = b.build().fetch_all(&self.pool).await?;
                let mut events = Vec::with_capacity(rows.len());
                let mut last = None;
                for row in rows.iter().take(q.limit as usize) {
                    let (e, at) = $crate::sql::audit_row(row)?;
                    last = Some($crate::Cursor {
                        at_ms: at,
                        id: e.id.clone(),
                    });
                    events.push(e);
                }
                let next = if rows.len() > q.limit as usize { last } else { None };
                Ok($crate::AuditPage { events, next })
            }

            async fn put_binding(&self, b: &$crate::Binding) -> Result<(), $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO rbac_bindings (kind, name, role, team, created_by, created_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, name) DO UPDATE SET \
                     role = excluded.role, team = excluded.team, \
                     created_by = excluded.created_by, created_ms = excluded.created_ms",
                )
                .bind(b.kind.as_str())
                .bind(&b.name)
                .bind(&b.role)
                .bind(&b.team)
                .bind(&b.created_by)
                .bind(b.created_ms)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE governance_version SET version = version + 1 WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_binding(
                &self,
                kind: $crate::BindingKind,
                name: &str,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                let r = sqlx::query("DELETE FROM rbac_bindings WHERE kind = $1 AND name = $2")
                    .bind(kind.as_str())
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE governance_version SET version = version + 1 WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(r.rows_affected() > 0)
            }

            async fn list_bindings(&self) -> Result<Vec<$crate::Binding>, $crate::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT kind, name, role, team, created_by, created_ms FROM rbac_bindings \
                     ORDER BY kind, name",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let kind: String = r.try_get("kind")?;
                        Ok($crate::Binding {
                            kind: $crate::BindingKind::parse(&kind).ok_or_else(|| {
                                $crate::StoreError::Corrupt(format!("binding kind {kind}"))
                            })?,
                            name: r.try_get("name")?,
                            role: r.try_get("role")?,
                            team: r.try_get("team")?,
                            created_by: r.try_get("created_by")?,
                            created_ms: r.try_get("created_ms")?,
                        })
                    })
                    .collect()
            }

            async fn wait_for_change(&self, max: std::time::Duration) {
                self.wait_change(max).await
            }

            async fn bindings_version(&self) -> Result<i64, $crate::StoreError> {
                let (v,): (i64,) =
                    sqlx::query_as("SELECT version FROM governance_version WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?;
                Ok(v)
            }

            async fn create_key(&self, k: &$crate::ApiKeyRecord) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO api_keys (id, hash, prefix, name, subject, team, role, created_ms, \
                     expires_ms, last_used_ms, revoked_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&k.id)
                .bind(&k.hash)
                .bind(&k.prefix)
                .bind(&k.name)
                .bind(&k.subject)
                .bind(&k.team)
                .bind(&k.role)
                .bind(k.created_ms)
                .bind(k.expires_ms)
                .bind(k.last_used_ms)
                .bind(k.revoked_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn key_by_hash(
                &self,
                hash: &str,
            ) -> Result<Option<$crate::ApiKeyRecord>, $crate::StoreError> {
                let sql = format!("SELECT {} FROM api_keys WHERE hash = $1", $crate::sql::KEY_COLUMNS);
                let row = sqlx::query(&sql).bind(hash).fetch_optional(&self.pool).await?;
                row.as_ref().map($crate::sql::key_row).transpose()
            }

            async fn key_by_id(
                &self,
                id: &str,
            ) -> Result<Option<$crate::ApiKeyRecord>, $crate::StoreError> {
                let sql = format!("SELECT {} FROM api_keys WHERE id = $1", $crate::sql::KEY_COLUMNS);
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map($crate::sql::key_row).transpose()
            }

            async fn list_keys(
                &self,
                subject: Option<&str>,
            ) -> Result<Vec<$crate::ApiKeyRecord>, $crate::StoreError> {
                let rows = match subject {
                    Some(s) => {
                        let sql = format!(
                            "SELECT {} FROM api_keys WHERE subject = $1 ORDER BY created_ms DESC, id",
                            $crate::sql::KEY_COLUMNS
                        );
                        sqlx::query(&sql).bind(s).fetch_all(&self.pool).await?
                    }
                    None => {
                        let sql = format!(
                            "SELECT {} FROM api_keys ORDER BY created_ms DESC, id",
                            $crate::sql::KEY_COLUMNS
                        );
                        sqlx::query(&sql).fetch_all(&self.pool).await?
                    }
                };
                rows.iter().map($crate::sql::key_row).collect()
            }

            async fn revoke_key(&self, id: &str, now_ms: i64) -> Result<bool, $crate::StoreError> {
                let r = sqlx::query(
                    "UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL",
                )
                .bind(now_ms)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn touch_key(&self, id: &str, now_ms: i64) -> Result<(), $crate::StoreError> {
                sqlx::query("UPDATE api_keys SET last_used_ms = $1 WHERE id = $2")
                    .bind(now_ms)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use governance_sql;

/// Reads one `audit_events` row (any backend) into an event and its time.
pub(crate) fn audit_row<R>(r: &R) -> Result<(gatehouse_audit::AuditEvent, i64), crate::StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let at: i64 = r.try_get("at_ms")?;
    let outcome: String = r.try_get("outcome")?;
    let status: i64 = r.try_get("status")?;
    let e = gatehouse_audit::AuditEvent {
        id: r.try_get("id")?,
        time: crate::audit_query::ms_to_rfc3339(at),
        request_id: r.try_get("request_id")?,
        principal: gatehouse_audit::AuditPrincipal {
            subject: r.try_get("actor")?,
            team: r.try_get("team")?,
            role: r.try_get("role")?,
            auth_method: r.try_get("auth_method")?,
            key_name: r.try_get("key_name")?,
        },
        action: r.try_get("action")?,
        sandbox_id: r.try_get("sandbox_id")?,
        method: r.try_get("method")?,
        path: r.try_get("path")?,
        status: u16::try_from(status)
            .map_err(|_| crate::StoreError::Corrupt(format!("status {status}")))?,
        outcome: crate::audit_query::parse_outcome(&outcome)
            .ok_or_else(|| crate::StoreError::Corrupt(format!("outcome {outcome}")))?,
        reason: r.try_get("reason")?,
        duration_ms: r.try_get("duration_ms")?,
        peer: r.try_get("peer")?,
        on_behalf_of: {
            let team: Option<String> = r.try_get("tenant_team")?;
            let owner: Option<String> = r.try_get("tenant_owner")?;
            (team.is_some() || owner.is_some())
                .then_some(gatehouse_audit::OnBehalfOf { team, owner })
        },
    };
    Ok((e, at))
}

/// Reads one `api_keys` row (any backend).
pub(crate) fn key_row<R>(r: &R) -> Result<crate::ApiKeyRecord, crate::StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(crate::ApiKeyRecord {
        id: r.try_get("id")?,
        hash: r.try_get("hash")?,
        prefix: r.try_get("prefix")?,
        name: r.try_get("name")?,
        subject: r.try_get("subject")?,
        team: r.try_get("team")?,
        role: r.try_get("role")?,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        last_used_ms: r.try_get("last_used_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
    })
}
