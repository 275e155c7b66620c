//! The leads worker: writes the first message to a lead, follows up when nobody answers, and tells
//! the team through the escalation bot.
//!
//! One kind, five jobs (`payload.action`), each kept in `work_items`:
//!
//! * `outreach` — runs the lead's round when it is due (at once, or at the opening when the lead
//!   came outside working hours): claims it (`OutreachStarted`), plans the channels
//!   (`plan_outreach`: the customer's choice first, then GREEN-API, Telegram, WhatsApp; round-robin
//!   over the tenant's usable accounts), asks GREEN-API `checkWhatsapp` before writing to a number,
//!   records the attempt *before* anything is sent, and writes the message into the customer's
//!   conversation (the existing one when there is one) with the attempt's reply id. The
//!   conversation's delivery path sends it, exactly once.
//! * `confirm` — brought forward when that message is sent or fails: records the contact (and the
//!   no-reply check, N minutes later) or the failed attempt, and goes on with the next one; after
//!   the last, the lead fails with the plan's reason.
//! * `no_reply` — fires the check; the lead says whether it still applies.
//! * `notify` — the escalation bot's message to the team's chat (failed lead, no reply); retried by
//!   the bus, then recorded as failed.
//! * `notify_escalation` — the same bot's message about an escalated conversation, once per
//!   escalation; the outcome is recorded on the conversation.

use aisales_domain::codec::EventSchema;
use aisales_domain::conversation::{
    ChannelKind, Conversation, ConversationCommand, ConversationEvent, LeadMessage, ReplyStatus,
};
use aisales_domain::lead::{
    self as dl, FailureReason, Lead, LeadCommand, LeadError, LeadStatus, OutreachAccount, PlannedAttempt, Recipient,
};
use async_trait::async_trait;
use secrecy::SecretString;
use uuid::Uuid;

use super::Services;
use crate::application::leads::{BOT_TOKEN_SECRET, clock};
use crate::bus::jobs::LeadJob;
use crate::bus::worker::JobHandler;
use crate::bus::{Job, Kind};
use crate::channels::SendError;
use crate::infra::crypto::Keyring;
use crate::store::{EventMetadata, ExecuteError};
use crate::tenancy::accounts::Clients;

/// Account states in which an account may not write first.
const UNUSABLE_STATES: &[&str] = &["notAuthorized", "blocked", "sleepMode", "yellowCard", "starting"];

pub struct LeadsHandler {
    services: Services,
    clients: Clients,
    keys: Keyring,
}

/// What the next step of a round is.
enum Step {
    /// Waiting for something else (the message's send, the opening): the job comes back.
    Wait,
    /// Nothing more for this job.
    Done,
    /// Look again (a step was recorded).
    Again,
}

impl LeadsHandler {
    pub fn new(services: Services) -> Self {
        LeadsHandler {
            clients: Clients::new(&services.settings, services.http.clone()),
            keys: Keyring::from_settings(&services.settings),
            services,
        }
    }

    fn meta(&self, job: &Job) -> EventMetadata {
        job.metadata(super::actor(Kind::Leads))
    }

    async fn load(&self, lead_id: Uuid) -> anyhow::Result<Lead> {
        Ok(self.services.store.load::<Lead>(&lead_id.to_string()).await?.state)
    }

    async fn command(&self, job: &Job, lead_id: Uuid, cmd: LeadCommand) -> Result<(), ExecuteError<LeadError>> {
        self.services.store.execute::<Lead>(&lead_id.to_string(), cmd, &(), &self.meta(job)).await.map(|_| ())
    }

    /// Records a command whose refusal means "the lead moved on" (not an error of this job).
    async fn record(&self, job: &Job, lead_id: Uuid, cmd: LeadCommand) -> anyhow::Result<()> {
        match self.command(job, lead_id, cmd).await {
            Ok(())
            | Err(ExecuteError::Rejected(
                LeadError::StaleRound(_) | LeadError::NotRunnable(_) | LeadError::NotDue(_) | LeadError::UnknownAttempt,
            )) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("lead {lead_id}: {e}")),
        }
    }

    async fn tenant(&self, tenant: Uuid) -> anyhow::Result<crate::tenancy::Tenant> {
        self.services
            .tenancy
            .tenant(&self.services.pool, tenant)
            .await?
            .ok_or_else(|| anyhow::anyhow!("tenant {tenant} is gone"))
    }

    /// The tenant's accounts as the routing sees them.
    async fn accounts(&self, tenant: Uuid) -> anyhow::Result<Vec<(OutreachAccount, crate::tenancy::ChannelAccount)>> {
        Ok(crate::tenancy::list_channel_accounts(&self.services.pool, tenant)
            .await?
            .into_iter()
            .map(|a| {
                let usable = a.disabled_at.is_none() && !UNUSABLE_STATES.contains(&a.status.as_str());
                (OutreachAccount { id: a.id, channel: a.kind, usable, created_at: a.created_at }, a)
            })
            .collect())
    }

    /// How long to wait for the customer's reply (the deployment may shorten every tenant's).
    fn no_reply_after(&self, tenant: &crate::tenancy::Tenant) -> Option<chrono::Duration> {
        let wait = tenant.settings.leads.no_reply_after()?;
        match self.services.settings.leads_no_reply_after {
            Some(d) => chrono::Duration::from_std(d).ok().filter(|d| !d.is_zero()),
            None => Some(wait),
        }
    }

    // ----------------------------------------------------------------------------------------
    // outreach

    /// Goes on with round `round` of the lead as far as it can now.
    async fn advance(&self, job: &Job, lead_id: Uuid, round: u32) -> anyhow::Result<()> {
        for _ in 0..16 {
            match self.step(job, lead_id, round).await? {
                Step::Again => continue,
                Step::Wait | Step::Done => return Ok(()),
            }
        }
        Ok(())
    }

    async fn step(&self, job: &Job, lead_id: Uuid, round: u32) -> anyhow::Result<Step> {
        let lead = self.load(lead_id).await?;
        let Some(status) = lead.status else { anyhow::bail!("lead {lead_id} does not exist yet") };
        // Erased: nobody is written to any more.
        if lead.round != round || lead.erased {
            return Ok(Step::Done);
        }
        let now = clock::now(lead.tenant_id);
        match status {
            LeadStatus::Received | LeadStatus::Scheduled => {
                return match self.command(job, lead_id, LeadCommand::StartOutreach { round, at: now }).await {
                    Ok(()) => Ok(Step::Again),
                    // Early (the clock of the job and the lead's differ): it comes back.
                    Err(ExecuteError::Rejected(LeadError::NotDue(_))) => Ok(Step::Wait),
                    Err(ExecuteError::Rejected(_)) => Ok(Step::Done),
                    Err(e) => Err(anyhow::anyhow!("lead {lead_id}: {e}")),
                };
            }
            LeadStatus::Contacting => {}
            _ => return Ok(Step::Done),
        }
        // The attempt in flight, if any: how did its message fare?
        if let Some(a) = lead.attempts.iter().rev().find(|a| a.error.is_none()) {
            let conversation = a.conversation_id.ok_or_else(|| anyhow::anyhow!("attempt without conversation"))?;
            let state = self.services.store.load::<Conversation>(&conversation.to_string()).await?.state;
            return match state.replies.get(&a.reply_id) {
                Some(r) if matches!(r.status, ReplyStatus::Sent | ReplyStatus::Delivered) => {
                    let tenant = self.tenant(lead.tenant_id).await?;
                    let cmd = LeadCommand::RecordContacted {
                        round,
                        reply_id: a.reply_id,
                        conversation_id: conversation,
                        provider_message_id: r.provider_message_id.clone(),
                        no_reply_after: self.no_reply_after(&tenant),
                        at: now,
                    };
                    self.record(job, lead_id, cmd).await?;
                    metrics::counter!("aisales_leads_contacted_total", "channel" => a.channel.as_str()).increment(1);
                    Ok(Step::Done)
                }
                Some(r) if r.status == ReplyStatus::Failed => {
                    let error = "the message could not be delivered".to_string();
                    self.record(
                        job,
                        lead_id,
                        LeadCommand::RecordAttemptFailed { round, reply_id: a.reply_id, error, at: now },
                    )
                    .await?;
                    metrics::counter!("aisales_lead_attempts_failed_total", "channel" => a.channel.as_str())
                        .increment(1);
                    Ok(Step::Again)
                }
                Some(_) => Ok(Step::Wait),
                None => {
                    // Recorded, but the worker stopped before writing the message: write it now.
                    let planned =
                        PlannedAttempt { channel: a.channel, account_id: a.account_id, recipient: a.recipient.clone() };
                    self.write(job, &lead, lead_id, conversation, &planned, a.reply_id).await?;
                    Ok(Step::Wait)
                }
            };
        }
        self.next_attempt(job, &lead, lead_id, round).await
    }

    /// Plans the round and makes its next attempt (or records the round failed).
    async fn next_attempt(&self, job: &Job, lead: &Lead, lead_id: Uuid, round: u32) -> anyhow::Result<Step> {
        let tenant = self.tenant(lead.tenant_id).await?;
        let now = clock::now(lead.tenant_id);
        let accounts = self.accounts(lead.tenant_id).await?;
        let routing: Vec<OutreachAccount> = accounts.iter().map(|(o, _)| o.clone()).collect();
        let contact = lead.fields.contact();
        // Round-robin: a number stable for the lead, so a step run twice picks the same account.
        let counter = lead_id.as_u128() as u64;
        let mut plan = dl::plan_outreach(
            &contact,
            lead.fields.preferred_channel,
            tenant.settings.leads.strict_preferred_channel,
            &routing,
            counter,
        );
        // The customer's existing conversation on a planned channel is where the message goes.
        for a in &mut plan.attempts {
            if let Some((account, _)) = self.existing_conversation(lead.tenant_id, a).await? {
                a.account_id = account;
            }
        }
        plan.attempts.dedup();
        let tried: Vec<Uuid> = lead.attempts.iter().map(|a| a.reply_id).collect();
        let Some(attempt) =
            plan.attempts.iter().find(|a| !tried.contains(&dl::outreach_reply_id(lead_id, round, a))).cloned()
        else {
            self.record(job, lead_id, LeadCommand::RecordFailed { round, reason: plan.failure, at: now }).await?;
            metrics::counter!("aisales_leads_failed_total", "reason" => plan.failure.as_str()).increment(1);
            return Ok(Step::Done);
        };
        let reply_id = dl::outreach_reply_id(lead_id, round, &attempt);
        let account = accounts
            .iter()
            .find(|(o, _)| o.id == attempt.account_id)
            .map(|(_, a)| a.clone())
            .ok_or_else(|| anyhow::anyhow!("account {} is gone", attempt.account_id))?;
        // Before anything is sent: can this recipient be written to?
        let refusal = match (&attempt.recipient, attempt.channel) {
            (Recipient::GreenApiChat { chat_id }, ChannelKind::GreenApi) => {
                if self.existing_conversation(lead.tenant_id, &attempt).await?.is_some() {
                    None
                } else {
                    let creds = self.services.tenancy.green_api(&self.services.pool, &self.keys, &account).await?;
                    let digits = chat_id.trim_end_matches("@c.us");
                    match self.clients.green_api.check_whatsapp(&creds, digits).await {
                        Ok(true) => None,
                        Ok(false) => Some("the number has no account on the messenger".to_string()),
                        Err(e) if e.is_transient() => anyhow::bail!("checkWhatsapp: {}", e.reason()),
                        Err(e) => Some(format!("checkWhatsapp: {}", e.reason())),
                    }
                }
            }
            (Recipient::TelegramUsername { .. } | Recipient::TelegramPhone { .. }, _) => {
                if self.existing_conversation(lead.tenant_id, &attempt).await?.is_some() {
                    None
                } else {
                    Some("a Telegram bot cannot write first to someone who has not written to it".to_string())
                }
            }
            _ => None,
        };
        let conversation = match &refusal {
            Some(_) => None,
            None => Some(self.conversation_for(lead.tenant_id, &attempt).await?),
        };
        let cmd = LeadCommand::RecordAttempt {
            round,
            attempt: attempt.clone(),
            reply_id,
            conversation_id: conversation.map(|(c, _)| c),
            at: now,
        };
        match self.command(job, lead_id, cmd).await {
            Ok(()) => {}
            Err(ExecuteError::Rejected(_)) => return Ok(Step::Done),
            Err(e) => return Err(anyhow::anyhow!("lead {lead_id}: {e}")),
        }
        if let Some(error) = refusal {
            self.record(job, lead_id, LeadCommand::RecordAttemptFailed { round, reply_id, error, at: now }).await?;
            metrics::counter!("aisales_lead_attempts_failed_total", "channel" => attempt.channel.as_str()).increment(1);
            return Ok(Step::Again);
        }
        let (conversation, _) = conversation.expect("a conversation when not refused");
        self.write(job, lead, lead_id, conversation, &attempt, reply_id).await?;
        Ok(Step::Wait)
    }

    /// The chat id of an attempt on its channel.
    fn chat_id(attempt: &PlannedAttempt) -> Option<String> {
        match &attempt.recipient {
            Recipient::GreenApiChat { chat_id } => Some(chat_id.clone()),
            Recipient::WhatsappPhone { phone } => Some(phone.clone()),
            Recipient::TelegramUsername { .. } | Recipient::TelegramPhone { .. } => None,
        }
    }

    /// The customer's conversation for an attempt when it exists already: by the chat id on the
    /// channel, else (Telegram) by the customer's phone. Returns (account, conversation).
    async fn existing_conversation(
        &self,
        tenant: Uuid,
        attempt: &PlannedAttempt,
    ) -> anyhow::Result<Option<(Uuid, Uuid)>> {
        let pool = &self.services.pool;
        if let Some(chat) = Self::chat_id(attempt) {
            let found: Option<(Uuid, Uuid)> = sqlx::query_as(
                "SELECT c.account_id, c.conversation_id FROM channel_identities i \
                   JOIN rm_conversations c ON c.tenant_id = i.tenant_id AND c.conversation_id = i.conversation_id \
                  WHERE i.tenant_id = $1 AND i.channel = $2 AND i.external_id = $3",
            )
            .bind(tenant)
            .bind(attempt.channel.as_str())
            .bind(&chat)
            .fetch_optional(pool)
            .await?;
            return Ok(found);
        }
        let phone = match &attempt.recipient {
            Recipient::TelegramPhone { phone } => phone.clone(),
            _ => return Ok(None),
        };
        let found: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT account_id, conversation_id FROM rm_conversations \
              WHERE tenant_id = $1 AND channel = 'telegram' AND customer_phone IN ($2, '+' || $2) \
              ORDER BY last_message_at DESC NULLS LAST LIMIT 1",
        )
        .bind(tenant)
        .bind(&phone)
        .fetch_optional(pool)
        .await?;
        Ok(found)
    }

    /// The conversation an attempt writes into: the customer's existing one, else a new one (its
    /// identity is created here, the conversation by the message).
    async fn conversation_for(&self, tenant: Uuid, attempt: &PlannedAttempt) -> anyhow::Result<(Uuid, Option<Uuid>)> {
        if let Some((_, conversation)) = self.existing_conversation(tenant, attempt).await? {
            return Ok((conversation, None));
        }
        let chat = Self::chat_id(attempt).ok_or_else(|| anyhow::anyhow!("no chat to open on {}", attempt.channel))?;
        let identity = self
            .services
            .identities
            .resolve(&self.services.pool, tenant, attempt.channel, attempt.account_id, &chat)
            .await?;
        Ok((identity.conversation_id, Some(identity.customer_id)))
    }

    /// Writes the lead's first message into `conversation` (queued for the delivery path).
    async fn write(
        &self,
        job: &Job,
        lead: &Lead,
        lead_id: Uuid,
        conversation: Uuid,
        attempt: &PlannedAttempt,
        reply_id: Uuid,
    ) -> anyhow::Result<()> {
        let chat = Self::chat_id(attempt).unwrap_or_default();
        let customer = if chat.is_empty() {
            Uuid::now_v7()
        } else {
            self.services
                .identities
                .resolve(&self.services.pool, lead.tenant_id, attempt.channel, attempt.account_id, &chat)
                .await?
                .customer_id
        };
        let now = clock::now(lead.tenant_id);
        let message = LeadMessage {
            lead_id,
            tenant_id: lead.tenant_id,
            channel: attempt.channel,
            account_id: attempt.account_id,
            chat_id: chat,
            customer_id: customer,
            customer_name: lead.fields.client_name.clone(),
            customer_phone: lead.fields.phone.as_ref().map(|p| p.digits().to_string()),
            reply_id,
            text: lead.text.clone(),
            send_after: chrono::Utc::now(),
            at: now,
        };
        self.record_on_conversation(job, conversation, ConversationCommand::WriteToLead(Box::new(message))).await
    }

    // ----------------------------------------------------------------------------------------
    // no reply, notifications

    async fn no_reply(&self, job: &Job, lead_id: Uuid, check: u32) -> anyhow::Result<()> {
        let lead = self.load(lead_id).await?;
        if lead.status.is_none() {
            return Ok(());
        }
        let at = clock::now(lead.tenant_id);
        self.record(job, lead_id, LeadCommand::FireNoReplyCheck { check, at }).await?;
        if lead.pending_check.as_ref().is_some_and(|p| p.check == check && p.due_at <= at) {
            metrics::counter!("aisales_leads_no_reply_total").increment(1);
        }
        Ok(())
    }

    /// The notice's text, or `None` when the lead no longer calls for it.
    fn notice_text(&self, lead: &Lead, notice: &str, tenant: &crate::tenancy::Tenant) -> Option<String> {
        let (what, _) = notice.split_once(':')?;
        match what {
            "failed" => Some(dl::texts::failed_lead_notice(
                &lead.fields,
                lead.failure.unwrap_or(FailureReason::AllChannelsFailed),
            )),
            "no_reply" => {
                let channel = lead.contact.as_ref().map(|c| c.channel).unwrap_or(ChannelKind::GreenApi);
                let after = self.no_reply_after(tenant).unwrap_or_else(|| chrono::Duration::minutes(15));
                Some(dl::texts::no_reply_notice(&lead.fields, channel, after))
            }
            _ => None,
        }
    }

    async fn notify(&self, job: &Job, lead_id: Uuid, notice: &str) -> anyhow::Result<()> {
        let lead = self.load(lead_id).await?;
        if lead.status.is_none() || lead.notices.iter().any(|n| n == notice) {
            return Ok(());
        }
        let tenant = self.tenant(lead.tenant_id).await?;
        let at = clock::now(lead.tenant_id);
        let kind = notice.split(':').next().unwrap_or("notice");
        let outcome = match self.notice_text(&lead, notice, &tenant) {
            Some(text) => self.tell_team(&tenant, kind, &text).await?,
            None => Err(format!("unknown notice {notice}")),
        };
        let cmd = match outcome {
            Ok(chat_id) => LeadCommand::RecordNotified { notice: notice.to_string(), chat_id, at },
            Err(error) => LeadCommand::RecordNotifyFailed { notice: notice.to_string(), error, at },
        };
        self.record(job, lead_id, cmd).await
    }

    /// Tells the team of an escalated conversation: who, on which channel, why, and what the
    /// customer wrote last before it.
    async fn notify_escalation(
        &self,
        job: &Job,
        conversation_id: Uuid,
        escalation: u64,
        reason: &str,
    ) -> anyhow::Result<()> {
        let conversation = self.services.store.load::<Conversation>(&conversation_id.to_string()).await?.state;
        if !conversation.started || conversation.team_notices.contains(&escalation) {
            return Ok(());
        }
        let tenant = self.tenant(conversation.tenant_id).await?;
        let last_message = self.last_customer_text(conversation_id, escalation).await?;
        let text = dl::texts::escalation_notice(&dl::texts::EscalatedConversation {
            client_name: conversation.customer_name.as_deref(),
            phone: conversation.customer_phone.as_deref(),
            channel: conversation.channel.unwrap_or(ChannelKind::GreenApi),
            reason,
            last_message: last_message.as_deref(),
        });
        let cmd = match self.tell_team(&tenant, "escalation", &text).await? {
            Ok(chat_id) => ConversationCommand::RecordTeamNotified { escalation, chat_id },
            Err(error) => ConversationCommand::RecordTeamNotifyFailed { escalation, error },
        };
        self.record_on_conversation(job, conversation_id, cmd).await
    }

    /// The text of the customer's last message before the event at `before` (read from the
    /// events, which never lag).
    async fn last_customer_text(&self, conversation_id: Uuid, before: u64) -> anyhow::Result<Option<String>> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT event_type, event_version, payload::text FROM events \
             WHERE aggregate_type = 'conversation' AND aggregate_id = $1 AND event_type = 'MessageReceived' \
             AND sequence < $2 ORDER BY sequence DESC LIMIT 1",
        )
        .bind(conversation_id.to_string())
        .bind(i64::try_from(before).unwrap_or(i64::MAX))
        .fetch_optional(&self.services.pool)
        .await?;
        let Some((event_type, version, payload)) = row else { return Ok(None) };
        let payload = aisales_projections::pii::opened(&self.services.pool, &event_type, payload).await?;
        Ok(match ConversationEvent::decode(&event_type, &version, &payload)? {
            ConversationEvent::MessageReceived { text, .. } => Some(text),
            _ => None,
        })
    }

    /// Runs `cmd` on the conversation as this job (a refusal is an error of the job).
    async fn record_on_conversation(
        &self,
        job: &Job,
        conversation_id: Uuid,
        cmd: ConversationCommand,
    ) -> anyhow::Result<()> {
        self.services
            .store
            .execute::<Conversation>(&conversation_id.to_string(), cmd, &(), &self.meta(job))
            .await
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("conversation {conversation_id}: {e}"))
    }

    /// Sends `text` to the tenant's team chat through its escalation bot: `Ok(Ok(chat id))` when
    /// sent, `Ok(Err(why))` when it cannot be (nothing configured, refused for good: recorded),
    /// `Err` when it may work later (the bus retries, then `dead_letter` records it).
    async fn tell_team(
        &self,
        tenant: &crate::tenancy::Tenant,
        kind: &str,
        text: &str,
    ) -> anyhow::Result<Result<String, String>> {
        let Some(chat_id) = tenant.settings.leads.escalation_chat_id.clone().filter(|c| !c.trim().is_empty()) else {
            return Ok(Err("no escalation chat is configured".into()));
        };
        let token = {
            let mut conn = self.services.pool.acquire().await?;
            match crate::infra::crypto::get(&mut conn, &self.keys, Some(tenant.id), BOT_TOKEN_SECRET).await {
                Ok(t) => SecretString::from(t),
                Err(crate::infra::crypto::SecretError::Missing { .. }) => {
                    return Ok(Err("no escalation bot token is configured".into()));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let counted = |outcome: &'static str| {
            metrics::counter!("aisales_lead_notices_total", "notice" => kind.to_string(), "outcome" => outcome)
                .increment(1)
        };
        match self.clients.telegram.send_notice(&token, &chat_id, text).await {
            Ok(_) => {
                counted("sent");
                Ok(Ok(chat_id))
            }
            Err(SendError::Transient { reason, .. }) | Err(SendError::Unconfirmed { reason }) => {
                anyhow::bail!("the escalation bot could not send: {reason}")
            }
            Err(SendError::Permanent { reason }) => {
                counted("failed");
                Ok(Err(reason))
            }
        }
    }
}

#[async_trait]
impl JobHandler for LeadsHandler {
    fn kind(&self) -> Kind {
        Kind::Leads
    }

    async fn handle(&self, job: &Job) -> anyhow::Result<()> {
        match job.payload::<LeadJob>()? {
            LeadJob::Outreach { lead_id, round } | LeadJob::Confirm { lead_id, round, .. } => {
                self.advance(job, lead_id, round).await
            }
            LeadJob::NoReply { lead_id, check } => self.no_reply(job, lead_id, check).await,
            LeadJob::Notify { lead_id, notice } => self.notify(job, lead_id, &notice).await,
            LeadJob::NotifyEscalation { conversation_id, escalation, reason } => {
                self.notify_escalation(job, conversation_id, escalation, &reason).await
            }
        }
    }

    async fn dead_letter(&self, job: &Job, reason: &str) -> anyhow::Result<()> {
        let at = chrono::Utc::now();
        match job.payload::<LeadJob>()? {
            LeadJob::Outreach { lead_id, round } | LeadJob::Confirm { lead_id, round, .. } => {
                self.record(
                    job,
                    lead_id,
                    LeadCommand::RecordFailed { round, reason: FailureReason::AllChannelsFailed, at },
                )
                .await
            }
            LeadJob::NoReply { .. } => Ok(()),
            LeadJob::Notify { lead_id, notice } => {
                self.record(job, lead_id, LeadCommand::RecordNotifyFailed { notice, error: reason.to_string(), at })
                    .await
            }
            LeadJob::NotifyEscalation { conversation_id, escalation, .. } => {
                let cmd = ConversationCommand::RecordTeamNotifyFailed { escalation, error: reason.to_string() };
                self.record_on_conversation(job, conversation_id, cmd).await
            }
        }
    }

    async fn retry(&self, job: &Job) -> anyhow::Result<()> {
        match job.payload::<LeadJob>()? {
            LeadJob::Outreach { lead_id, .. } | LeadJob::Confirm { lead_id, .. } => {
                let at = chrono::Utc::now();
                self.record(job, lead_id, LeadCommand::RetryOutreach { by: super::actor(Kind::Leads), at }).await
            }
            _ => Ok(()),
        }
    }
}
