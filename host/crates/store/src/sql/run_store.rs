//! The one implementation of [`RunStore`](crate::RunStore), written once as
//! a macro over the backend hooks described in [`crate::sql`]: each backend
//! module invokes it for its own store type.

/// The one implementation of [`RunStore`](crate::RunStore), for a backend
/// type with fields `pool`, `url`, `options`, `wakeups` and the hooks
/// `now`, `write_tx`, `fail`, `notify_cancel`, `wakeup` and `close_listener`
/// (see the module docs).
macro_rules! impl_run_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::RunStore for $store {
            fn url(&self) -> &str {
                &self.url
            }

            fn lease(&self) -> std::time::Duration {
                self.options.lease
            }

            async fn insert(
                &self,
                run: &$crate::NewRun,
            ) -> Result<$crate::RunRecord, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "insert a run";
                let v = InsertValues::of(run);
                let now = self.now();
                let lease_expires_ms = now.saturating_add(millis(self.options.lease));
                let mut tx = self.write_tx(OP).await?;
                let r = sqlx::query(INSERT_RUN)
                    .bind(&run.id)
                    .bind(&run.name)
                    .bind(&run.workflow)
                    .bind(&run.workflow_version)
                    .bind(&run.workflow_digest)
                    .bind(&run.subject)
                    .bind(&run.caller)
                    .bind(v.input_size)
                    .bind(&v.input_sha256)
                    .bind(&v.input_json)
                    .bind(now)
                    .bind(&run.replica)
                    .bind(lease_expires_ms)
                    .bind(v.stored_bytes())
                    .execute(&mut *tx)
                    .await;
                match r {
                    Err(e) if $crate::error::is_unique_violation(&e) => {
                        return Err($crate::StoreError::DuplicateRun {
                            url: self.url.clone(),
                            id: run.id.clone(),
                        });
                    }
                    Err(e) => return Err(self.fail(OP, e)),
                    Ok(_) => {}
                }
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok($crate::RunRecord {
                    id: run.id.clone(),
                    name: run.name.clone(),
                    workflow: run.workflow.clone(),
                    workflow_version: run.workflow_version.clone(),
                    workflow_digest: run.workflow_digest.clone(),
                    subject: run.subject.clone(),
                    caller: run.caller.clone(),
                    input_size: u64::try_from(v.input_size).unwrap_or(0),
                    stored_bytes: u64::try_from(v.stored_bytes()).unwrap_or(0),
                    input_sha256: v.input_sha256,
                    input: run.keep_input.then(|| run.input.clone()),
                    state: $crate::RunState::Running,
                    progress: 0.0,
                    message: String::new(),
                    result: None,
                    error: None,
                    usage: None,
                    started_ms: now,
                    finished_ms: None,
                    replica: run.replica.clone(),
                    lease_expires_ms,
                    cancel_requested_ms: None,
                    events: 0,
                })
            }

            async fn progress(
                &self,
                id: &str,
                fraction: f32,
                message: &str,
            ) -> Result<bool, $crate::StoreError> {
                const OP: &str = "update progress";
                let mut tx = self.write_tx(OP).await?;
                let n = sqlx::query($crate::sql::PROGRESS)
                    .bind(id)
                    .bind(f64::from(fraction))
                    .bind(message)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?
                    .rows_affected();
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(n == 1)
            }

            async fn finish(
                &self,
                id: &str,
                state: $crate::FinalState,
                result: Option<&serde_json::Value>,
                error: Option<&serde_json::Value>,
                usage: Option<&serde_json::Value>,
            ) -> Result<bool, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "finish a run";
                let state = $crate::RunState::from(state);
                let (result, error, usage) = (
                    result.map(|v| v.to_string()),
                    error.map(|v| v.to_string()),
                    usage.map(|v| v.to_string()),
                );
                let added: usize = [&result, &error, &usage]
                    .iter()
                    .map(|t| t.as_deref().map_or(0, str::len))
                    .sum();
                let progress = (state == $crate::RunState::Completed).then_some(1.0f64);
                let mut tx = self.write_tx(OP).await?;
                let n = sqlx::query(FINISH)
                    .bind(id)
                    .bind(state.as_str())
                    .bind(&result)
                    .bind(&error)
                    .bind(&usage)
                    .bind(self.now())
                    .bind(progress)
                    .bind(len_i64(added))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?
                    .rows_affected();
                // Only a committed update counts as finished.
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(n == 1)
            }

            async fn get(
                &self,
                id: &str,
            ) -> Result<Option<$crate::RunRecord>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::sql::RunRow>($crate::sql::GET)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.fail("get a run", e))?
                    .map(|r| r.into_record(&self.url))
                    .transpose()
            }

            async fn list(
                &self,
                limit: u32,
            ) -> Result<Vec<$crate::RunRecord>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::sql::RunRow>($crate::sql::LIST)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.fail("list runs", e))?
                    .into_iter()
                    .map(|r| r.into_record(&self.url))
                    .collect()
            }

            async fn request_cancel(
                &self,
                id: &str,
            ) -> Result<$crate::CancelRequest, $crate::StoreError> {
                const OP: &str = "request a cancel";
                let mut tx = self.write_tx(OP).await?;
                let replica: Option<String> = sqlx::query_scalar($crate::sql::REQUEST_CANCEL)
                    .bind(id)
                    .bind(self.now())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                let Some(replica) = replica else {
                    // Not running: nothing changes a finished run back, so
                    // reading it after the UPDATE is not a race.
                    drop(tx);
                    return Ok(match self.get(id).await? {
                        Some(r) => $crate::CancelRequest::AlreadyFinished(Box::new(r)),
                        None => $crate::CancelRequest::NotFound,
                    });
                };
                self.notify_cancel(&mut tx, &replica)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                self.wakeups.wake(&replica);
                Ok($crate::CancelRequest::Requested { replica })
            }

            async fn cancel_requests(
                &self,
                replica: &str,
            ) -> Result<Vec<String>, $crate::StoreError> {
                sqlx::query_scalar($crate::sql::CANCEL_REQUESTS)
                    .bind(replica)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.fail("read cancel requests", e))
            }

            fn cancel_wakeup(&self, replica: &str) -> $crate::CancelWakeup {
                self.wakeup(replica)
            }

            async fn renew_leases(
                &self,
                replica: &str,
            ) -> Result<Vec<String>, $crate::StoreError> {
                const OP: &str = "renew leases";
                let until = self
                    .now()
                    .saturating_add($crate::sql::millis(self.options.lease));
                let mut tx = self.write_tx(OP).await?;
                let ids: Vec<String> = sqlx::query_scalar($crate::sql::RENEW)
                    .bind(replica)
                    .bind(until)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(ids)
            }

            async fn interrupt_expired(
                &self,
                sweeper: &str,
            ) -> Result<Vec<String>, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "interrupt runs whose lease expired";
                let now = self.now();
                let mut tx = self.write_tx(OP).await?;
                let expired: Vec<(String, String, i64)> = sqlx::query_as(EXPIRED)
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                let mut ids = Vec::with_capacity(expired.len());
                for (id, replica, expired_ms) in expired {
                    let error = interrupted_error(
                        format!(
                            "replica `{replica}` stopped renewing the lease of run `{id}` (it expired at unix ms {expired_ms}); the run was interrupted"
                        ),
                        &replica,
                        Some((expired_ms, sweeper)),
                    );
                    let n = sqlx::query(INTERRUPT_EXPIRED)
                        .bind(&id)
                        .bind(&error)
                        .bind(now)
                        .bind(len_i64(error.len()))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.fail(OP, e))?
                        .rows_affected();
                    if n == 1 {
                        ids.push(id);
                    }
                }
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(ids)
            }

            async fn interrupt_own(
                &self,
                replica: &str,
            ) -> Result<Vec<String>, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "interrupt a restarted replica's runs";
                let error = interrupted_error(
                    format!(
                        "replica `{replica}` restarted while the run was running; the run was interrupted"
                    ),
                    replica,
                    None,
                );
                let mut tx = self.write_tx(OP).await?;
                let ids: Vec<String> = sqlx::query_scalar(INTERRUPT_OWN)
                    .bind(replica)
                    .bind(&error)
                    .bind(self.now())
                    .bind(len_i64(error.len()))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(ids)
            }

            async fn prune(
                &self,
                retention: $crate::Retention,
            ) -> Result<$crate::Pruned, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "prune finished runs";
                let mut pruned = $crate::Pruned::default();
                let mut tx = self.write_tx(OP).await?;
                if let Some(age) = retention.max_age {
                    pruned.by_age = sqlx::query(PRUNE_AGE)
                        .bind(self.now().saturating_sub(millis(age)))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.fail(OP, e))?
                        .rows_affected();
                }
                if let Some(budget) = retention.max_bytes {
                    pruned.by_size = sqlx::query(PRUNE_SIZE)
                        .bind(i64::try_from(budget).unwrap_or(i64::MAX))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.fail(OP, e))?
                        .rows_affected();
                }
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(pruned)
            }

            async fn append_event(
                &self,
                id: &str,
                event: &serde_json::Value,
            ) -> Result<u64, $crate::StoreError> {
                use $crate::sql::*;
                const OP: &str = "append an event";
                let text = event.to_string();
                let mut tx = self.write_tx(OP).await?;
                let seq: Option<i64> = sqlx::query_scalar(BUMP_EVENTS)
                    .bind(id)
                    .bind(len_i64(text.len()))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                let Some(seq) = seq else {
                    return Err($crate::StoreError::NoSuchRun {
                        url: self.url.clone(),
                        id: id.to_string(),
                    });
                };
                sqlx::query(INSERT_EVENT)
                    .bind(id)
                    .bind(seq)
                    .bind(self.now())
                    .bind(&text)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.fail(OP, e))?;
                tx.commit().await.map_err(|e| self.fail(OP, e))?;
                Ok(u64::try_from(seq).unwrap_or(0))
            }

            async fn events(
                &self,
                id: &str,
                after_seq: u64,
                limit: u32,
            ) -> Result<Vec<$crate::RunEvent>, $crate::StoreError> {
                let rows: Vec<(i64, i64, String)> = sqlx::query_as($crate::sql::EVENTS)
                    .bind(id)
                    .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.fail("list events", e))?;
                rows.into_iter()
                    .map(|(seq, at_ms, text)| {
                        let event = serde_json::from_str(&text).map_err(|e| {
                            $crate::StoreError::BadRecord {
                                url: self.url.clone(),
                                id: id.to_string(),
                                field: "event_json",
                                reason: format!("event {seq}: {e}"),
                            }
                        })?;
                        Ok($crate::RunEvent {
                            run_id: id.to_string(),
                            seq: u64::try_from(seq).unwrap_or(0),
                            at_ms,
                            event,
                        })
                    })
                    .collect()
            }

            async fn close(&self) {
                self.close_listener();
                self.pool.close().await;
            }
        }
    };
}
pub(crate) use impl_run_store;
