//! Delivers replies through the channel's API, exactly once per reply.
//!
//! Before calling the provider the worker records `ReplySendStarted` on the conversation: the
//! durable claim of that send (two workers cannot both claim it). The provider's message id is
//! stored (and the send recorded) right after it answers. If a worker dies between the provider
//! accepting the message and that record, the next delivery of the job finds the reply still
//! "sending" and, instead of sending again, reconciles: GREEN-API's journal of outgoing messages
//! tells whether the message went out; for providers without such a journal the reply is marked
//! failed with "delivery unknown", so an operator decides, rather than risk a second send.

use std::time::Duration;

use aisales_domain::conversation::{ChannelKind, Conversation, ConversationCommand, ConversationError, ReplyStatus};
use async_trait::async_trait;
use chrono::Utc;
use secrecy::SecretString;
use uuid::Uuid;

use super::Services;
use crate::bus::jobs::SendReply;
use crate::bus::worker::JobHandler;
use crate::bus::{Job, Kind};
use crate::channels::{OutgoingFile, SendError, SentMessage};
use crate::infra::crypto::Keyring;
use crate::store::ExecuteError;
use crate::tenancy::ChannelAccount;
use crate::tenancy::accounts::Clients;

/// What a send needs to authenticate with the provider.
enum Credentials {
    GreenApi(crate::channels::green_api::GreenApiCredentials),
    Telegram(SecretString),
    Whatsapp { token: SecretString, phone_number_id: String },
}

pub struct SendHandler {
    pub services: Services,
    pub clients: Clients,
    pub keys: Keyring,
}

impl SendHandler {
    pub fn new(services: Services) -> Self {
        SendHandler {
            clients: Clients::new(&services.settings, services.http.clone()),
            keys: Keyring::from_settings(&services.settings),
            services,
        }
    }

    async fn command(&self, job: &Job, cmd: ConversationCommand) -> Result<(), ExecuteError<ConversationError>> {
        self.services
            .store
            .execute::<Conversation>(&job.aggregate_id, cmd, &(), &job.metadata(super::actor(Kind::MessageSend)))
            .await
            .map(|_| ())
    }

    /// Records a command whose refusal means "already done by someone else" (not an error here).
    async fn record(&self, job: &Job, cmd: ConversationCommand) -> anyhow::Result<()> {
        match self.command(job, cmd).await {
            Ok(())
            | Err(ExecuteError::Rejected(ConversationError::ReplyNotInState(_) | ConversationError::ReplyNotFound)) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn account(&self, state: &Conversation) -> anyhow::Result<ChannelAccount> {
        crate::tenancy::channel_account(&self.services.pool, state.tenant_id, state.account_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("channel account {} is gone", state.account_id))
    }

    /// The account's credentials. An account or secret that cannot be read is an error of the
    /// deployment (fixable by an operator), not of the reply: the job is delivered again and, after
    /// too many deliveries, dead-lettered, to be retried once fixed.
    async fn credentials(&self, account: &ChannelAccount) -> anyhow::Result<Credentials> {
        let pool = &self.services.pool;
        Ok(match account.kind {
            ChannelKind::GreenApi => {
                Credentials::GreenApi(self.services.tenancy.green_api(pool, &self.keys, account).await?)
            }
            ChannelKind::Telegram => Credentials::Telegram(SecretString::from(
                self.services.tenancy.secret(pool, &self.keys, account, "bot_token").await?,
            )),
            ChannelKind::Whatsapp => Credentials::Whatsapp {
                token: SecretString::from(
                    self.services.tenancy.secret(pool, &self.keys, account, "access_token").await?,
                ),
                phone_number_id: account
                    .config
                    .get("phone_number_id")
                    .and_then(|v| v.as_str())
                    .unwrap_or(&account.external_key)
                    .to_string(),
            },
        })
    }

    async fn send(
        &self,
        creds: &Credentials,
        chat_id: &str,
        text: &str,
        file: Option<&OutgoingFile<'_>>,
    ) -> Result<SentMessage, SendError> {
        if let Some(file) = file {
            return match creds {
                Credentials::GreenApi(c) => self.clients.green_api.send_file_by_upload(c, chat_id, file).await,
                Credentials::Telegram(token) => self.clients.telegram.send_file(token, chat_id, file).await,
                Credentials::Whatsapp { token, phone_number_id } => {
                    self.clients.whatsapp.send_file(token, phone_number_id, chat_id, file).await
                }
            };
        }
        match creds {
            Credentials::GreenApi(c) => self.clients.green_api.send_message(c, chat_id, text).await,
            Credentials::Telegram(token) => self.clients.telegram.send_message(token, chat_id, text).await,
            Credentials::Whatsapp { token, phone_number_id } => {
                self.clients.whatsapp.send_text(token, phone_number_id, chat_id, text).await
            }
        }
    }

    /// Remembers which conversation a provider id belongs to (for statuses and echoes), before the
    /// send is recorded.
    async fn remember(
        &self,
        conversation: Uuid,
        state: &Conversation,
        account: &ChannelAccount,
        reply_id: Uuid,
        provider_id: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO outbound_messages (tenant_id, channel, provider_message_id, conversation_id, reply_id, chat_id) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(state.tenant_id)
        .bind(account.kind.as_str())
        .bind(provider_id)
        .bind(conversation)
        .bind(reply_id)
        .bind(&state.chat_id)
        .execute(&self.services.pool)
        .await?;
        Ok(())
    }

    /// A reply left "sending" by a worker that stopped: find out whether it went out.
    async fn reconcile(&self, job: &Job, state: &Conversation, reply_id: Uuid) -> anyhow::Result<()> {
        let reply = &state.replies[&reply_id];
        let account = self.account(state).await?;
        if account.kind == ChannelKind::GreenApi {
            let creds = self.services.tenancy.green_api(&self.services.pool, &self.keys, &account).await?;
            let since = reply.started_at.unwrap_or_else(Utc::now) - chrono::Duration::seconds(60);
            let minutes = ((Utc::now() - since).num_minutes() + 2).clamp(1, 1440) as u32;
            match self.clients.green_api.last_outgoing_messages(&creds, minutes).await {
                Ok(journal) => {
                    // Sends already recorded for other replies (the same text twice in a chat) are
                    // not this one.
                    let ids: Vec<String> = journal.iter().map(|r| r.id_message.clone()).collect();
                    let known: Vec<String> = sqlx::query_scalar(
                        "SELECT provider_message_id FROM outbound_messages \
                          WHERE tenant_id = $1 AND channel = $2 AND provider_message_id = ANY($3) AND reply_id <> $4",
                    )
                    .bind(state.tenant_id)
                    .bind(account.kind.as_str())
                    .bind(&ids)
                    .bind(reply_id)
                    .fetch_all(&self.services.pool)
                    .await?;
                    let found = journal.iter().filter(|r| !known.contains(&r.id_message)).find(|r| {
                        crate::channels::green_api::normalize_chat_id(&r.chat_id)
                            == crate::channels::green_api::normalize_chat_id(&state.chat_id)
                            // A file's caption is its text (a file may have none).
                            && r.text.as_deref().unwrap_or("").trim() == reply.text.trim()
                            && r.timestamp >= since
                    });
                    return match found {
                        Some(record) => {
                            self.remember(job.aggregate_id.parse()?, state, &account, reply_id, &record.id_message)
                                .await?;
                            tracing::info!(reply = %reply_id, "send found in the provider's journal; recorded without sending again");
                            self.record(
                                job,
                                ConversationCommand::RecordSent {
                                    reply_id,
                                    provider_message_id: record.id_message.clone(),
                                    at: Utc::now(),
                                    reconciled: true,
                                },
                            )
                            .await
                        }
                        None => {
                            // The provider never got it: safe to send again.
                            self.record(
                                job,
                                ConversationCommand::ScheduleRetry {
                                    reply_id,
                                    retry_at: Utc::now(),
                                    reason: "the previous attempt stopped before the provider accepted the message"
                                        .into(),
                                },
                            )
                            .await
                        }
                    };
                }
                Err(e) if e.is_transient() => anyhow::bail!("cannot read the provider's journal yet: {}", e.reason()),
                Err(_) => {}
            }
        }
        self.record(
            job,
            ConversationCommand::FailReply {
                reply_id,
                reason:
                    "delivery unknown: the sending worker stopped during the send and the provider cannot confirm it; \
                         check the chat before retrying"
                        .into(),
                permanent: true,
            },
        )
        .await
    }
}

#[async_trait]
impl JobHandler for SendHandler {
    fn kind(&self) -> Kind {
        Kind::MessageSend
    }

    async fn handle(&self, job: &Job) -> anyhow::Result<()> {
        let SendReply { conversation_id: conversation, reply_id } = job.payload()?;
        let state = self.services.store.load::<Conversation>(&job.aggregate_id).await?.state;
        if state.erased {
            // A reply queued before the customer was erased (its stream entry outlived the job,
            // which the erasure closed): there is nobody to send it to any more.
            tracing::info!(reply = %reply_id, "reply not sent: the customer's data was erased");
            return Ok(());
        }
        let Some(reply) = state.replies.get(&reply_id) else { return Ok(()) };
        match reply.status {
            ReplyStatus::Sent | ReplyStatus::Delivered | ReplyStatus::Failed => return Ok(()),
            ReplyStatus::Sending => {
                let visibility = chrono::Duration::from_std(self.services.settings.bus.visibility_timeout)?;
                let stale = reply.started_at.is_none_or(|t| Utc::now() - t > visibility);
                // A recent claim belongs to a worker that is still sending.
                return if stale { self.reconcile(job, &state, reply_id).await } else { Ok(()) };
            }
            ReplyStatus::Queued => {}
        }
        // Not before its time (human-like delay, retry backoff): a copy of the job that arrives
        // early is dropped; the job itself is pushed again when it is due.
        if reply.not_before.is_some_and(|t| t > Utc::now() + chrono::Duration::milliseconds(500)) {
            return Ok(());
        }
        let max = self.services.settings.bus.send_max_attempts;
        if reply.attempts >= max {
            return self
                .record(
                    job,
                    ConversationCommand::FailReply {
                        reply_id,
                        reason: format!("gave up after {max} attempts"),
                        permanent: false,
                    },
                )
                .await;
        }
        let account = self.account(&state).await?;
        if account.disabled_at.is_some() {
            // Disabled on purpose (a number taken away, a bot revoked): never send through it. The
            // reply fails for good, visibly, so an operator answers another way.
            metrics::counter!("aisales_replies_failed_total", "channel" => account.kind.as_str()).increment(1);
            tracing::warn!(reply = %reply_id, account = %account.id, "reply not sent: its channel account is disabled");
            return self
                .record(
                    job,
                    ConversationCommand::FailReply {
                        reply_id,
                        reason: "not sent: the channel account is disabled; enable it or answer the customer \
                                 another way"
                            .into(),
                        permanent: true,
                    },
                )
                .await;
        }
        let creds = self.credentials(&account).await?;
        // The file is read before the send is claimed: a store that cannot be read is a problem of
        // the deployment (the job comes back); a file gone from it fails the reply visibly.
        let file_bytes = match &reply.attachment {
            None => None,
            Some(a) => {
                let store = crate::media::MediaStore::shared(&self.services.settings.media)?;
                match store.get(state.tenant_id, &a.sha256).await? {
                    Some(bytes) => Some(bytes),
                    None => {
                        return self
                            .record(
                                job,
                                ConversationCommand::FailReply {
                                    reply_id,
                                    reason: "not sent: the attached file is no longer stored".into(),
                                    permanent: true,
                                },
                            )
                            .await;
                    }
                }
            }
        };
        let file = reply.attachment.as_ref().zip(file_bytes).map(|(a, bytes)| OutgoingFile {
            bytes,
            file_name: &a.file_name,
            mime_type: &a.mime_type,
            caption: &reply.text,
            photo: a.is_photo(),
        });
        match self.command(job, ConversationCommand::StartSend { reply_id, at: Utc::now() }).await {
            Ok(()) => {}
            // Another worker claimed it first.
            Err(ExecuteError::Rejected(ConversationError::ReplyNotInState(_))) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let attempt = reply.attempts + 1;
        let started = std::time::Instant::now();
        let result = self.send(&creds, &state.chat_id, &reply.text, file.as_ref()).await;
        metrics::histogram!("aisales_provider_send_seconds", "channel" => account.kind.as_str())
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(sent) => {
                self.remember(conversation, &state, &account, reply_id, &sent.provider_message_id).await?;
                metrics::counter!("aisales_replies_sent_total", "channel" => account.kind.as_str()).increment(1);
                self.record(
                    job,
                    ConversationCommand::RecordSent {
                        reply_id,
                        provider_message_id: sent.provider_message_id,
                        at: Utc::now(),
                        reconciled: false,
                    },
                )
                .await
            }
            // The provider may have taken it: sending again could deliver it twice. The reply stays
            // "sending"; once the claim is stale the job comes back and is reconciled (GREEN-API's
            // journal says whether it went out; other channels report "delivery unknown").
            Err(SendError::Unconfirmed { reason }) => {
                tracing::warn!(reply = %reply_id, attempt, reason = %reason, "send unconfirmed; will reconcile instead of resending");
                Ok(())
            }
            Err(SendError::Transient { reason, retry_after }) if attempt < max => {
                let backoff = Duration::from_secs(2u64.saturating_pow(attempt).min(300));
                // A provider's hint is honoured up to an hour (a larger one would overflow dates).
                let wait = retry_after.unwrap_or(backoff).clamp(Duration::from_secs(1), Duration::from_secs(3600));
                tracing::warn!(reply = %reply_id, attempt, retry_in_s = wait.as_secs(), reason = %reason, "send failed; retrying later");
                self.record(
                    job,
                    ConversationCommand::ScheduleRetry {
                        reply_id,
                        retry_at: Utc::now() + chrono::Duration::from_std(wait)?,
                        reason,
                    },
                )
                .await
            }
            Err(SendError::Transient { reason, .. }) => {
                self.record(
                    job,
                    ConversationCommand::FailReply {
                        reply_id,
                        reason: format!("{reason} (after {attempt} attempts)"),
                        permanent: false,
                    },
                )
                .await
            }
            Err(SendError::Permanent { reason }) => {
                metrics::counter!("aisales_replies_failed_total", "channel" => account.kind.as_str()).increment(1);
                self.record(job, ConversationCommand::FailReply { reply_id, reason, permanent: true }).await
            }
        }
    }

    async fn dead_letter(&self, job: &Job, reason: &str) -> anyhow::Result<()> {
        let SendReply { reply_id, .. } = job.payload()?;
        self.record(job, ConversationCommand::FailReply { reply_id, reason: reason.to_string(), permanent: false })
            .await
    }

    async fn retry(&self, job: &Job) -> anyhow::Result<()> {
        let SendReply { reply_id, .. } = job.payload()?;
        self.record(job, ConversationCommand::RetryReply { reply_id }).await
    }
}
