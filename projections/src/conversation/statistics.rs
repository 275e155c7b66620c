//! Daily statistics (`rm_daily_stats`) and first-response times (`rm_response_times`), with the
//! projector's own record of which conversations wait for a reply since when
//! (`rm_stats_waiting`).
//!
//! The counts are added in place (`counter = counter + delta`), so a batch never reads them. A
//! stored wait is only read where the batch sends a reply that ends it; elsewhere a customer
//! message can only start a wait, and one already stored is older, so it is inserted unless
//! present.

use std::collections::HashMap;

use aisales_domain::conversation::{ConversationEvent as E, Decision};
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::projection::{ReadModel, ReadModelProjector};
use super::{Decoded, ids};
use crate::projector::Target;
use crate::rows;

/// Projector of `rm_daily_stats` and `rm_response_times` (with its own waiting-since state).
pub type Statistics = ReadModelProjector<StatisticsModel>;

/// Daily statistics as a read model.
pub struct StatisticsModel;

/// A row of `rm_daily_stats` (counts of one tenant and UTC day).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DailyStats {
    pub tenant_id: Uuid,
    pub day: NaiveDate,
    pub messages_in: i32,
    pub messages_out: i32,
    pub suggestions_generated: i32,
    pub decided_auto_send: i32,
    pub decided_need_approval: i32,
    pub decided_escalate: i32,
    pub suggestions_failed: i32,
    pub approved: i32,
    pub auto_approved: i32,
    pub edited: i32,
    pub rejected: i32,
    pub superseded: i32,
    pub escalations: i32,
}

/// A conversation waiting for a reply (a row of `rm_stats_waiting`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    pub conversation_id: Uuid,
    pub tenant_id: Uuid,
    pub waiting_since: DateTime<Utc>,
}

/// A first response (a row of `rm_response_times`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseTime {
    pub tenant_id: Uuid,
    pub conversation_id: Uuid,
    pub sequence: i64,
    pub day: NaiveDate,
    pub seconds: f64,
}

impl ReadModel for StatisticsModel {
    const NAME: &'static str = "daily_stats";
    const DESCRIPTION: &'static str = "per-tenant daily statistics and first-response times";
    const TABLES: &'static [&'static str] = &["rm_daily_stats", "rm_response_times", "rm_stats_waiting"];

    async fn write(conn: &mut PgConnection, target: Target, events: &[Decoded<'_>]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let waiting_table = target.table("rm_stats_waiting");
        let replied = replied(events);
        let stored =
            rows::load(conn, &waiting_table, "conversation_id", &replied, |r: &Waiting| r.conversation_id).await?;
        let tally = Tally::of(events, &replied, stored);

        let stats_table = target.table("rm_daily_stats");
        let stats: Vec<&DailyStats> = tally.stats.values().collect();
        let counters = || rows::columns::<DailyStats>().iter().filter(|c| !["tenant_id", "day"].contains(c));
        let set = counters().map(|c| format!("{c} = s.{c} + EXCLUDED.{c}")).collect::<Vec<_>>().join(", ");
        let cols = rows::columns::<DailyStats>().join(", ");
        sqlx::query(&format!(
            "INSERT INTO {stats_table} AS s ({cols}) SELECT {cols} FROM jsonb_populate_recordset(NULL::{stats_table}, $1::jsonb) \
             ON CONFLICT (tenant_id, day) DO UPDATE SET {set}"
        ))
        .bind(serde_json::to_string(&stats)?)
        .execute(&mut *conn)
        .await?;
        let times_table = target.table("rm_response_times");
        rows::upsert(
            conn,
            &times_table,
            &["conversation_id", "sequence"],
            rows::columns::<ResponseTime>(),
            &tally.times,
        )
        .await?;

        let (keep, clear): (Vec<_>, Vec<_>) = tally.waiting.into_iter().partition(|(_, w)| w.is_some());
        let keep: Vec<Waiting> = keep.into_iter().filter_map(|(_, w)| w).collect();
        rows::upsert(conn, &waiting_table, &["conversation_id"], rows::columns::<Waiting>(), &keep).await?;
        let started: Vec<&Waiting> = tally.started.values().collect();
        rows::insert_missing(conn, &waiting_table, &["conversation_id"], rows::columns::<Waiting>(), &started).await?;
        let clear: Vec<Uuid> = clear.into_iter().map(|(id, _)| id).collect();
        if !clear.is_empty() {
            sqlx::query(&format!("DELETE FROM {waiting_table} WHERE conversation_id = ANY($1)"))
                .bind(&clear)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// The conversations a batch sends a reply in: where the stored wait is needed.
pub fn replied(events: &[Decoded]) -> Vec<Uuid> {
    ids(events.iter().filter(|d| matches!(d.event, E::ReplySent { .. })).map(|d| d.conversation_id))
}

/// What a batch adds to the statistics.
#[derive(Debug, Default)]
pub struct Tally {
    /// Counts to add, per tenant and UTC day.
    pub stats: HashMap<(Uuid, NaiveDate), DailyStats>,
    /// First responses the batch sent.
    pub times: Vec<ResponseTime>,
    /// The waits of the conversations the batch replied in, as they end the batch: `Some` is
    /// written, `None` deleted.
    pub waiting: HashMap<Uuid, Option<Waiting>>,
    /// Waits the batch starts elsewhere (inserted unless a wait, then older, is stored).
    pub started: HashMap<Uuid, Waiting>,
}

impl Tally {
    /// Folds a batch, given the conversations it replies in and their `stored` waits.
    pub fn of(events: &[Decoded], replied: &[Uuid], mut stored: HashMap<Uuid, Waiting>) -> Self {
        let mut tally =
            Tally { waiting: replied.iter().map(|id| (*id, stored.remove(id))).collect(), ..Tally::default() };
        for d in events {
            tally.add(d);
        }
        tally
    }

    fn add(&mut self, d: &Decoded) {
        let Some(tenant) = d.tenant_id else { return };
        let day = d.recorded_at.date_naive();
        let s = self.stats.entry((tenant, day)).or_insert_with(|| DailyStats {
            tenant_id: tenant,
            day,
            ..Default::default()
        });
        match d.event {
            E::MessageReceived { received_at, .. } => {
                s.messages_in += 1;
                // Kept at the column's precision (microseconds): a wait read back from
                // `rm_stats_waiting` in a later batch and one kept in memory within a batch must
                // give the same response time, or a rebuild would differ from the live model.
                let waiting_since = received_at.trunc_subsecs(6);
                let w = Waiting { conversation_id: d.conversation_id, tenant_id: tenant, waiting_since };
                match self.waiting.get_mut(&d.conversation_id) {
                    Some(known) => {
                        known.get_or_insert(w);
                    }
                    None => {
                        self.started.entry(d.conversation_id).or_insert(w);
                    }
                }
            }
            E::ReplySent { sent_at, .. } => {
                s.messages_out += 1;
                if let Some(Some(w)) = self.waiting.insert(d.conversation_id, None) {
                    let seconds = (*sent_at - w.waiting_since).num_milliseconds().max(0) as f64 / 1000.0;
                    self.times.push(ResponseTime {
                        tenant_id: tenant,
                        conversation_id: d.conversation_id,
                        sequence: d.sequence,
                        day,
                        seconds,
                    });
                }
            }
            E::SuggestionGenerated { decision, .. } => {
                s.suggestions_generated += 1;
                match decision {
                    Decision::AutoSend => s.decided_auto_send += 1,
                    Decision::NeedApproval => s.decided_need_approval += 1,
                    Decision::Escalate => s.decided_escalate += 1,
                }
            }
            E::SuggestionFailed { .. } => s.suggestions_failed += 1,
            E::SuggestionApproved { automatic: true, .. } => s.auto_approved += 1,
            E::SuggestionApproved { automatic: false, .. } => s.approved += 1,
            E::SuggestionEdited { .. } => s.edited += 1,
            E::SuggestionRejected { .. } => s.rejected += 1,
            E::SuggestionSuperseded { .. } => s.superseded += 1,
            E::ConversationEscalated { .. } => s.escalations += 1,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aisales_domain::conversation::{ConversationEvent as E, Decision};
    use chrono::{DateTime, Duration, NaiveDate, SubsecRound};
    use uuid::Uuid;

    use super::{DailyStats, ResponseTime, Tally, Waiting, replied};
    use crate::conversation::log::{A, B, Log, assert_columns, generated, received, sent};

    fn tally(log: &Log, stored: HashMap<Uuid, Waiting>) -> Tally {
        let decoded = log.decoded();
        Tally::of(&decoded, &replied(&decoded), stored)
    }

    #[test]
    fn counts_are_per_tenant_and_utc_day() {
        let mut log = Log::new();
        let s = Uuid::from_u128(1);
        log.clock = log.clock.date_naive().and_hms_opt(23, 59, 58).unwrap().and_utc();
        log.push(A, generated(s, Decision::AutoSend))
            .push(A, generated(s, Decision::NeedApproval))
            .push(A, generated(s, Decision::Escalate))
            .push(A, E::SuggestionFailed { request_id: s, reason: "timeout".into() })
            .push(A, E::SuggestionApproved { suggestion_id: s, automatic: true })
            .push(A, E::SuggestionApproved { suggestion_id: s, automatic: false })
            .push(A, E::SuggestionEdited { suggestion_id: s, text: "x".into() })
            .push(A, E::SuggestionRejected { suggestion_id: s, reason: None })
            .push(A, E::SuggestionSuperseded { suggestion_id: s, by_message_id: s })
            .push(A, E::ConversationEscalated { reason: "price".into(), suggestion_id: None });
        // Every event counts on the day it was recorded: the first two before midnight.
        let t = tally(&log, HashMap::new());
        let (tenant, day) = (log.tenant, NaiveDate::from_ymd_opt(2026, 11, 27).unwrap());
        assert_eq!(
            t.stats[&(tenant, day)],
            DailyStats {
                tenant_id: tenant,
                day,
                suggestions_generated: 2,
                decided_auto_send: 1,
                decided_need_approval: 1,
                ..Default::default()
            }
        );
        let next = day.succ_opt().unwrap();
        assert_eq!(
            t.stats[&(tenant, next)],
            DailyStats {
                tenant_id: tenant,
                day: next,
                suggestions_generated: 1,
                decided_escalate: 1,
                suggestions_failed: 1,
                approved: 1,
                auto_approved: 1,
                edited: 1,
                rejected: 1,
                superseded: 1,
                escalations: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn events_without_a_tenant_are_not_counted() {
        let mut log = Log::new();
        log.push(A, received(Uuid::from_u128(1), "Привет", None, log.clock));
        log.events[0].tenant_id = None;
        let t = tally(&log, HashMap::new());
        assert!(t.stats.is_empty() && t.started.is_empty());
    }

    #[test]
    fn a_reply_ends_the_wait_of_the_first_unanswered_message() {
        let mut log = Log::new();
        let t0 = log.clock;
        log.push(A, received(Uuid::from_u128(1), "Привет", None, t0))
            .push(A, received(Uuid::from_u128(2), "Ау", None, t0 + Duration::seconds(20)))
            .push(A, sent(Uuid::from_u128(3), t0 + Duration::milliseconds(90_500)))
            .push(A, sent(Uuid::from_u128(4), t0 + Duration::seconds(100)))
            .push(A, received(Uuid::from_u128(5), "Спасибо", None, t0 + Duration::seconds(200)));
        let t = tally(&log, HashMap::new());
        let day = t0.date_naive();
        assert_columns(&t.times[0]);
        assert_columns(t.waiting[&A].as_ref().unwrap());
        assert_columns(&t.stats[&(log.tenant, day)]);
        assert_eq!(
            t.times,
            vec![ResponseTime { tenant_id: log.tenant, conversation_id: A, sequence: 3, day, seconds: 90.5 }],
            "one first response; the second reply finds no wait"
        );
        assert_eq!(
            t.waiting[&A],
            Some(Waiting { conversation_id: A, tenant_id: log.tenant, waiting_since: t0 + Duration::seconds(200) }),
            "a message after the reply waits again"
        );
        assert!(t.started.is_empty(), "a conversation replied in keeps its wait in `waiting`");
        assert_eq!((t.stats[&(log.tenant, day)].messages_in, t.stats[&(log.tenant, day)].messages_out), (3, 2));
    }

    #[test]
    fn a_stored_wait_is_ended_by_the_batch_and_elsewhere_only_new_waits_are_started() {
        let mut log = Log::new();
        let t0 = log.clock;
        let stored = Waiting { conversation_id: A, tenant_id: log.tenant, waiting_since: t0 - Duration::seconds(60) };
        log.push(A, received(Uuid::from_u128(1), "Ещё", None, t0))
            .push(A, sent(Uuid::from_u128(2), t0 + Duration::seconds(30)))
            .push(B, received(Uuid::from_u128(3), "Привет", None, t0))
            .push(B, received(Uuid::from_u128(4), "Ау", None, t0 + Duration::seconds(5)));
        let t = tally(&log, HashMap::from([(A, stored)]));
        assert_eq!(t.times.len(), 1);
        assert_eq!(t.times[0].seconds, 90.0, "from the stored wait, older than the batch");
        assert_eq!(t.waiting, HashMap::from([(A, None)]), "ended: deleted");
        assert_eq!(
            t.started,
            HashMap::from([(B, Waiting { conversation_id: B, tenant_id: log.tenant, waiting_since: t0 })]),
            "the first message of the batch (a stored wait, older, wins over it)"
        );
    }

    #[test]
    fn a_wait_gives_the_same_time_in_one_batch_as_read_back_from_its_row() {
        let mut log = Log::new();
        // Nanoseconds that a microsecond column cannot keep, where the millisecond rounds apart.
        let t0 = log.clock.trunc_subsecs(0) + Duration::nanoseconds(999);
        log.push(A, received(Uuid::from_u128(1), "Ау", None, t0))
            .push(A, sent(Uuid::from_u128(2), t0 + Duration::milliseconds(6_426) - Duration::nanoseconds(999)));
        let whole = tally(&log, HashMap::new());
        let mut first = Log::new();
        first.push(A, received(Uuid::from_u128(1), "Ау", None, t0));
        let stored = tally(&first, HashMap::new()).started.remove(&A).unwrap();
        // What the column gives back: microseconds, the rest dropped (as the driver writes it).
        let read_back = Waiting {
            waiting_since: DateTime::from_timestamp_micros(stored.waiting_since.timestamp_micros()).unwrap(),
            ..stored
        };
        let mut second = Log::new();
        second.push(A, sent(Uuid::from_u128(2), t0 + Duration::milliseconds(6_426) - Duration::nanoseconds(999)));
        let split = tally(&second, HashMap::from([(A, read_back)]));
        assert_eq!(whole.times[0].seconds, split.times[0].seconds);
        assert_eq!(whole.times[0].seconds, 6.426);
    }

    #[test]
    fn a_reply_without_a_wait_records_no_time_and_clears_it() {
        let mut log = Log::new();
        log.push(A, sent(Uuid::from_u128(2), log.clock));
        let t = tally(&log, HashMap::new());
        assert!(t.times.is_empty());
        assert_eq!(t.waiting, HashMap::from([(A, None)]));
    }
}
