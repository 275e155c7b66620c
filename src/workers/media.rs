//! The media worker: downloads each attachment of a customer message from its provider, stores it
//! content-addressed (with a thumbnail of an image) and records `AttachmentStored` or
//! `AttachmentRefused`; then reads stored photos with the vision model (when a key is configured
//! and the tenant has not switched it off) and records what was read, which starts the vehicle or
//! price lookup as a typed identifier would.

use aisales_domain::conversation::{
    ChannelKind, Conversation, ConversationCommand, DetectedCode, DetectedVehicleId, MediaOutcome, PhotoReport,
    TemplateSuggestion,
};
use aisales_domain::media::{self as dm, MediaRefusal, NotReadReason, StoredMedia, VisionAnswer};
use aisales_domain::vehicle_lookup::{self, IdType, VehicleId};
use async_trait::async_trait;
use secrecy::SecretString;
use uuid::Uuid;

use super::Services;
use crate::bus::jobs::MediaJob;
use crate::bus::worker::JobHandler;
use crate::bus::{Job, Kind};
use crate::infra::crypto::Keyring;
use crate::media::fetch::{self, FetchError, Source};
use crate::media::vision::Vision;
use crate::media::{self, MediaStore};

/// The text asking for a clearer photo (the old system's wording).
pub const CLEARER_PHOTO: &str = "Не удалось разобрать данные на фото. Пожалуйста, пришлите чёткое фото — без бликов, \
с хорошим освещением, табличка или документ целиком в кадре.";

pub struct MediaHandler {
    services: Services,
    store: MediaStore,
    vision: Vision,
    keys: Keyring,
}

impl MediaHandler {
    pub fn new(services: Services) -> anyhow::Result<Self> {
        Ok(MediaHandler {
            store: MediaStore::shared(&services.settings.media)?,
            vision: Vision::from_settings(&services.settings),
            keys: Keyring::from_settings(&services.settings),
            services,
        })
    }

    async fn record(&self, job: &Job, cmd: ConversationCommand) -> anyhow::Result<()> {
        let meta = job.metadata(super::actor(Kind::Media));
        self.services.store.execute::<Conversation>(&job.aggregate_id, cmd, &(), &meta).await?;
        Ok(())
    }

    async fn refuse(
        &self,
        job: &Job,
        message_id: Uuid,
        index: u32,
        reason: MediaRefusal,
        size: Option<u64>,
        detail: Option<String>,
    ) -> anyhow::Result<()> {
        metrics::counter!("aisales_media_refused_total", "reason" => reason.as_str()).increment(1);
        let outcome = MediaOutcome::Refused { reason, size, detail };
        self.record(job, ConversationCommand::RecordAttachment { message_id, index, outcome }).await
    }

    async fn store_attachment(
        &self,
        job: &Job,
        message_id: Uuid,
        index: u32,
        attachment: &aisales_domain::conversation::Attachment,
    ) -> anyhow::Result<()> {
        let s = &self.services;
        let state = s.store.load::<Conversation>(&job.aggregate_id).await?.state;
        if state.media_recorded.contains(&(message_id, index)) {
            return Ok(());
        }
        if state.erased {
            // Queued before the customer was erased: the link in the job is theirs and is not
            // followed.
            tracing::info!(message = %message_id, index, "attachment not downloaded: the customer's data was erased");
            return Ok(());
        }
        let tenant = state.tenant_id;
        let account = crate::tenancy::channel_account(&s.pool, tenant, state.account_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("channel account {} is gone", state.account_id))?;
        let secret = |name: &'static str| {
            let account = &account;
            async move { anyhow::Ok(SecretString::from(s.tenancy.secret(&s.pool, &self.keys, account, name).await?)) }
        };
        let max = self.store.max_bytes;
        let file_id = attachment.file_id.as_deref();
        let fetched = match (state.channel, attachment.url.as_deref(), file_id) {
            (Some(ChannelKind::Telegram), _, Some(file_id)) => {
                let token = secret("bot_token").await?;
                let source = Source::Telegram { api_url: &s.settings.telegram_api_url, token: &token, file_id };
                fetch::download(&s.http, source, max).await
            }
            (Some(ChannelKind::Whatsapp), _, Some(media_id)) => {
                let token = secret("access_token").await?;
                let source = Source::Whatsapp { api_url: &s.settings.whatsapp_api_url, token: &token, media_id };
                fetch::download(&s.http, source, max).await
            }
            (_, Some(url), _) => fetch::download(&s.http, Source::Url(url), max).await,
            _ => Err(FetchError::Permanent("the attachment names no file".into())),
        };
        let bytes = match fetched {
            Ok(b) => b,
            Err(FetchError::TooLarge { size }) => {
                return self.refuse(job, message_id, index, MediaRefusal::TooLarge, size, None).await;
            }
            Err(FetchError::Permanent(why)) => {
                return self.refuse(job, message_id, index, MediaRefusal::DownloadFailed, None, Some(why)).await;
            }
            // Delivered again after the visibility timeout; dead-lettered (and recorded as a failed
            // download) after the configured deliveries.
            Err(e @ FetchError::Transient(_)) => return Err(e.into()),
        };
        let size = bytes.len() as u64;
        // Hashing, decoding and scaling are CPU work: off the async threads, which keep serving
        // the other jobs' database and network calls meanwhile.
        let (checked, thumb) = tokio::task::spawn_blocking(move || match media::check(bytes, max) {
            Ok(checked) => {
                let thumb = media::thumbnail(&checked.bytes, checked.mime_type);
                (Ok(checked), thumb)
            }
            Err(reason) => (Err(reason), None),
        })
        .await?;
        let checked = match checked {
            Ok(c) => c,
            Err(reason) => {
                let claimed = attachment.mime_type.clone().map(|m| format!("claimed type {m}"));
                return self.refuse(job, message_id, index, reason, Some(size), claimed).await;
            }
        };
        // The thumbnail first: once the original is recorded, everything it names exists.
        if let Some(t) = &thumb {
            self.store.put(tenant, t).await?;
        }
        self.store.put(tenant, &checked).await?;
        sqlx::query(
            "INSERT INTO media_objects (tenant_id, sha256, size, mime_type, thumbnail_sha256) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, sha256) DO NOTHING",
        )
        .bind(tenant)
        .bind(&checked.sha256)
        .bind(size as i64)
        .bind(checked.mime_type)
        .bind(thumb.as_ref().map(|t| t.sha256.clone()))
        .execute(&s.pool)
        .await?;
        if let Some(t) = &thumb {
            sqlx::query(
                "INSERT INTO media_objects (tenant_id, sha256, size, mime_type, thumbnail_sha256) VALUES ($1, $2, $3, $4, NULL) \
                 ON CONFLICT (tenant_id, sha256) DO NOTHING",
            )
            .bind(tenant)
            .bind(&t.sha256)
            .bind(t.bytes.len() as i64)
            .bind(t.mime_type)
            .execute(&s.pool)
            .await?;
        }
        metrics::counter!("aisales_media_stored_total").increment(1);
        metrics::counter!("aisales_media_stored_bytes_total").increment(size);
        let media = StoredMedia {
            sha256: checked.sha256,
            size,
            mime_type: checked.mime_type.to_string(),
            thumbnail_sha256: thumb.map(|t| t.sha256),
        };
        let files: Vec<String> = std::iter::once(media.sha256.clone()).chain(media.thumbnail_sha256.clone()).collect();
        let recorded = self
            .record(
                job,
                ConversationCommand::RecordAttachment { message_id, index, outcome: MediaOutcome::Stored(media) },
            )
            .await;
        match recorded {
            Err(e) if crate::application::ingest::erased(&e) => {
                // The customer was erased while the file was downloading: it is not kept.
                let discarded = self.discard_unreferenced(tenant, &files).await?;
                tracing::info!(message = %message_id, index, discarded, "attachment not kept: the customer's data was erased");
                Ok(())
            }
            r => r,
        }
    }

    /// Deletes those of `files` that no stored attachment of the tenant names (another customer
    /// may have sent the same file); returns how many.
    async fn discard_unreferenced(&self, tenant: Uuid, files: &[String]) -> anyhow::Result<usize> {
        let unreferenced: Vec<String> = sqlx::query_scalar(
            "SELECT f FROM unnest($2::text[]) AS f WHERE NOT EXISTS ( \
                 SELECT 1 FROM events WHERE aggregate_type = 'conversation' AND event_type = 'AttachmentStored' \
                    AND tenant_id = $1 \
                    AND f IN (payload->'AttachmentStored'->'media'->>'sha256', \
                              payload->'AttachmentStored'->'media'->>'thumbnail_sha256'))",
        )
        .bind(tenant)
        .bind(files)
        .fetch_all(&self.services.pool)
        .await?;
        for sha in &unreferenced {
            self.store.delete(tenant, sha).await?;
        }
        sqlx::query("DELETE FROM media_objects WHERE tenant_id = $1 AND sha256 = ANY($2)")
            .bind(tenant)
            .bind(&unreferenced)
            .execute(&self.services.pool)
            .await?;
        Ok(unreferenced.len())
    }

    async fn read_photo(
        &self,
        job: &Job,
        message_id: Uuid,
        index: u32,
        sha256: &str,
        mime_type: &str,
    ) -> anyhow::Result<()> {
        let s = &self.services;
        let tenant_id = job.tenant_id.ok_or_else(|| anyhow::anyhow!("job without tenant"))?;
        let not_read = |reason| PhotoReport {
            message_id,
            index,
            sha256: sha256.to_string(),
            outcome: Err(reason),
            vehicle_id: None,
            transmission_code: None,
            clearer_photo: None,
        };
        let tenant =
            s.tenancy.tenant(&s.pool, tenant_id).await?.ok_or_else(|| anyhow::anyhow!("tenant {tenant_id} is gone"))?;
        let report = if !self.vision.is_configured() {
            not_read(NotReadReason::NoAiKey)
        } else if !tenant.settings.photo_reading {
            not_read(NotReadReason::SwitchedOff)
        } else {
            let bytes = self
                .store
                .get(tenant_id, sha256)
                .await?
                .ok_or_else(|| anyhow::anyhow!("stored photo {sha256} is missing"))?;
            // Network and server failures: delivered again, then dead-lettered as `vision_failed`.
            let content = self.vision.read(&bytes, mime_type).await?;
            match VisionAnswer::parse(&content) {
                Err(_) => not_read(NotReadReason::InvalidAnswer),
                Ok(answer) => self.report(tenant_id, &job.aggregate_id, message_id, index, sha256, &answer)?,
            }
        };
        self.record(job, ConversationCommand::RecordPhotoReading(Box::new(report))).await
    }

    fn report(
        &self,
        tenant: Uuid,
        conversation: &str,
        message_id: Uuid,
        index: u32,
        sha256: &str,
        answer: &VisionAnswer,
    ) -> anyhow::Result<PhotoReport> {
        let reading = dm::read_photo(answer);
        let conversation_id: Uuid = conversation.parse()?;
        let vehicle_id = reading.vehicle_id().and_then(|c| {
            let id_type = IdType::parse(c.kind.as_str())?;
            let lookup_id = VehicleId::parse(id_type, &c.value)
                .ok()
                .map(|id| vehicle_lookup::lookup_id(tenant, Some(conversation_id), &id));
            Some(DetectedVehicleId {
                id_type,
                value: c.value.clone(),
                score: c.score,
                reasons: c.reasons.clone(),
                lookup_id,
            })
        });
        let transmission_code =
            reading.transmission_code().map(|c| DetectedCode { code: c.value.clone(), score: c.score });
        let clearer_photo = reading.wants_clearer_photo().then(|| TemplateSuggestion {
            suggestion_id: Uuid::new_v5(&message_id, format!("clearer-photo:{index}").as_bytes()),
            template: "clearerPhoto".into(),
            text: CLEARER_PHOTO.into(),
            intent: "photo_request".into(),
            confidence: 1.0,
        });
        metrics::counter!("aisales_photos_read_total", "kind" => reading.kind.as_str()).increment(1);
        Ok(PhotoReport {
            message_id,
            index,
            sha256: sha256.to_string(),
            outcome: Ok(reading),
            vehicle_id,
            transmission_code,
            clearer_photo,
        })
    }
}

#[async_trait]
impl JobHandler for MediaHandler {
    fn kind(&self) -> Kind {
        Kind::Media
    }

    async fn handle(&self, job: &Job) -> anyhow::Result<()> {
        let done = match job.payload::<MediaJob>()? {
            MediaJob::Store { message_id, index, attachment, .. } => {
                self.store_attachment(job, message_id, index, &attachment).await
            }
            MediaJob::Read { message_id, index, sha256, mime_type, .. } => {
                self.read_photo(job, message_id, index, &sha256, &mime_type).await
            }
        };
        match done {
            // The customer was erased meanwhile: the conversation takes no outcome, and the job
            // has nothing left to do (delivered again, it would only be dead-lettered).
            Err(e) if crate::application::ingest::erased(&e) => {
                tracing::info!(job = %job.job_id, "media job dropped: the customer's data was erased");
                Ok(())
            }
            r => r,
        }
    }

    async fn dead_letter(&self, job: &Job, reason: &str) -> anyhow::Result<()> {
        match job.payload::<MediaJob>()? {
            MediaJob::Store { message_id, index, .. } => {
                self.refuse(job, message_id, index, MediaRefusal::DownloadFailed, None, Some(reason.to_string())).await
            }
            MediaJob::Read { message_id, index, sha256, .. } => {
                let report = PhotoReport {
                    message_id,
                    index,
                    sha256,
                    outcome: Err(NotReadReason::VisionFailed),
                    vehicle_id: None,
                    transmission_code: None,
                    clearer_photo: None,
                };
                self.record(job, ConversationCommand::RecordPhotoReading(Box::new(report))).await
            }
        }
    }

    async fn retry(&self, _job: &Job) -> anyhow::Result<()> {
        // A failed download or reading is final on the conversation; the customer is asked to
        // send the file again.
        Ok(())
    }
}
