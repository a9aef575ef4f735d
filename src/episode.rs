//! Episodes: one investigation per problem, not per alarm transition.
//!
//! Alarms that belong together share a **group key** ([`group_key`]). The first ALARM of a
//! group with no open episode **opens** one (`action: created`, the seed's body) and becomes
//! its primary; another alarm of the group entering ALARM while the episode is open **joins**
//! it (`action: updated` to the primary's investigation); the same alarm entering ALARM again
//! is a **flap** and sends nothing, as does any member past [`CorrelationConfig::max_updates`].
//! An ALARM inside its CloudWatch mute window opens nothing.
//!
//! An episode is open at event time `t` while any member is still in ALARM (no later OK of
//! that alarm seen) or `t` is within the window after the last member's transition, and never
//! more than `max_episode` after it opened. Every time here is an alarm's own
//! `state.timestamp`, never an arrival time, so a late event joins or opens by where its
//! timestamp falls; who is primary is decided on arrival (the first to arrive).
//!
//! This module is pure: [`decide`] and [`confirm_resolve`] take the stored [`Episode`] and
//! return the decision and the episode to write. The Correlate state ([`crate::correlate`])
//! reads, decides and writes the episode and the incident's decision in one conditional
//! write, so concurrent alarms of one group decide once.

use crate::config::CorrelationConfig;
use crate::event::{AlarmEvent, IncidentId, StateValue};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The tag that puts alarms into one group, whatever they watch.
pub const GROUP_TAG: &str = "alarm-relay:group";
/// Alarms an episode keeps track of; later ones are suppressed (and said so in their log).
pub const MAX_MEMBERS: usize = 100;

/// The current episode of one group key, as the store keeps it (`pk = EPISODE#<groupKey>`).
/// A closed or expired episode stays until the next ALARM of the group replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Episode {
    pub group_key: String,
    /// 1 for the group's first episode, +1 for each one opened after it.
    pub number: u64,
    pub primary_incident_id: IncidentId,
    pub primary_alarm_name: String,
    /// The primary's event time.
    pub opened_at: DateTime<Utc>,
    /// The latest event time of any member's transition (ALARM or OK) that counted.
    pub last_transition_at: DateTime<Utc>,
    /// In the order they joined; the primary first.
    pub members: Vec<Member>,
    /// `updated` messages sent (or being sent).
    pub updates: u32,
    /// The OK incident whose workflow is waiting out the quiet period to resolve the episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_pending: Option<IncidentId>,
    /// When `resolved` was decided (then the episode takes nothing more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Bumped by every write; the condition of the next one. 1 for a new item.
    pub version: u64,
}

/// One alarm of an episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The alarm's ARN, or its name when the event has no ARN.
    pub alarm: String,
    pub alarm_name: String,
    /// The incident of the alarm's first ALARM in this episode.
    pub incident_id: IncidentId,
    pub last_alarm_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ok_at: Option<DateTime<Utc>>,
}

impl Member {
    /// No OK later than its last ALARM has been seen.
    pub fn in_alarm(&self) -> bool {
        self.last_ok_at.is_none_or(|ok| ok <= self.last_alarm_at)
    }
}

impl Episode {
    fn new(group_key: &str, number: u64, transition: &Transition, version: u64) -> Self {
        Self {
            group_key: group_key.to_owned(),
            number,
            primary_incident_id: transition.incident_id.clone(),
            primary_alarm_name: transition.alarm_name.clone(),
            opened_at: transition.at,
            last_transition_at: transition.at,
            members: vec![Member {
                alarm: transition.alarm.clone(),
                alarm_name: transition.alarm_name.clone(),
                incident_id: transition.incident_id.clone(),
                last_alarm_at: transition.at,
                last_ok_at: None,
            }],
            updates: 0,
            resolve_pending: None,
            resolved_at: None,
            version,
        }
    }

    /// Whether an ALARM at event time `at` belongs to this episode.
    pub fn is_open_at(&self, at: DateTime<Utc>, config: &CorrelationConfig) -> bool {
        let window = chrono::Duration::from_std(config.window).unwrap_or(chrono::Duration::MAX);
        let max = chrono::Duration::from_std(config.max_episode).unwrap_or(chrono::Duration::MAX);
        if self.resolved_at.is_some() {
            return false;
        }
        let Some(earliest) = self.opened_at.checked_sub_signed(window) else {
            return false;
        };
        let latest = self
            .opened_at
            .checked_add_signed(max)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if at < earliest || at > latest {
            return false;
        }
        let quiet_until = self
            .last_transition_at
            .checked_add_signed(window)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.members.iter().any(Member::in_alarm) || at <= quiet_until
    }

    /// The member alarms' names, in the order they joined.
    pub fn member_names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.alarm_name.clone()).collect()
    }

    fn member_mut(&mut self, alarm: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.alarm == alarm)
    }

    /// The next version of this item with `change` applied.
    fn next(&self, change: impl FnOnce(&mut Self)) -> Self {
        let mut next = self.clone();
        next.version += 1;
        change(&mut next);
        next
    }
}

/// A CloudWatch alarm mute rule's window, from the event's `detail.muteDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuteWindow {
    pub muted_by_arn: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One alarm transition, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub incident_id: IncidentId,
    /// The alarm's ARN, or its name when the event has none.
    pub alarm: String,
    pub alarm_name: String,
    pub state: StateValue,
    /// The event's `state.timestamp`.
    pub at: DateTime<Utc>,
    pub mute: Option<MuteWindow>,
}

/// Why a transition could not be decided on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("state.timestamp {0:?} is not a time")]
    Timestamp(String),
}

impl Transition {
    /// The transition of `event`; its `muteDetail`, when well formed.
    pub fn of(event: &AlarmEvent) -> Result<Self, TransitionError> {
        let at = event_time(event.state_timestamp())
            .ok_or_else(|| TransitionError::Timestamp(event.state_timestamp().to_owned()))?;
        let alarm = if event.alarm_arn().is_empty() {
            event.alarm_name()
        } else {
            event.alarm_arn()
        };
        Ok(Self {
            incident_id: event.incident_id().clone(),
            alarm: alarm.to_owned(),
            alarm_name: event.alarm_name().to_owned(),
            state: event.state().value,
            at,
            mute: mute_window(event.raw()),
        })
    }
}

/// An alarm timestamp as CloudWatch writes it (`2026-11-24T10:00:00.000+0000`) or RFC 3339.
pub fn event_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// `detail.muteDetail` `{mutedByArn, muteWindowStart, muteWindowEnd}`, when all three are there.
pub fn mute_window(raw: &Value) -> Option<MuteWindow> {
    let detail = raw.pointer("/detail/muteDetail")?;
    let time = |key: &str| detail.get(key).and_then(Value::as_str).and_then(event_time);
    Some(MuteWindow {
        muted_by_arn: detail.get("mutedByArn")?.as_str()?.to_owned(),
        start: time("muteWindowStart")?,
        end: time("muteWindowEnd")?,
    })
}

/// The group key of an alarm: `group:<tag value>` when it has the [`GROUP_TAG`] tag; for a
/// Network Flow Monitor alarm `monitor:<MonitorId ARN>`, or `monitor:<account>/<region>/<name>`
/// from a `MonitorName` dimension; else `alarm:<its ARN>` (or its name when there is no ARN).
pub fn group_key(event: &AlarmEvent, tags: Option<&Value>) -> String {
    if let Some(group) = tags
        .and_then(|tags| tags.get(GROUP_TAG))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|group| !group.is_empty())
    {
        return format!("group:{group}");
    }
    if let Some(monitor) = nfm_monitor(event) {
        return format!("monitor:{monitor}");
    }
    if event.alarm_arn().is_empty() {
        format!("alarm:{}", event.alarm_name())
    } else {
        format!("alarm:{}", event.alarm_arn())
    }
}

/// The monitor of the first `AWS/NetworkFlowMonitor` metric the alarm reads (metric math
/// included): the `MonitorId` ARN (or id), else account/region/`MonitorName`.
fn nfm_monitor(event: &AlarmEvent) -> Option<String> {
    event.metrics().as_array()?.iter().find_map(|query| {
        let metric = query.pointer("/metricStat/metric")?;
        if metric.get("namespace")?.as_str()? != crate::enrich::NETWORK_FLOW_MONITOR_NAMESPACE {
            return None;
        }
        let dimension = |name: &str| {
            metric
                .pointer(&format!("/dimensions/{name}"))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        if let Some(id) = dimension("MonitorId") {
            return Some(id.to_owned());
        }
        dimension("MonitorName")
            .map(|name| format!("{}/{}/{name}", event.account(), event.region()))
    })
}

/// What the Correlate state decided for one transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Correlation is off (a window of 0): delivered on its own, as the seed does.
    Uncorrelated,
    /// Opened a new episode: `created`, the seed's body.
    Opened,
    /// Joined the open episode: `updated` to the primary's investigation.
    Joined,
    /// The same alarm again while its episode is open: nothing sent.
    Flapping,
    /// The episode sent its last update (or tracks its last member): nothing sent.
    UpdateLimit,
    /// Inside a mute window: nothing opened.
    Muted { rule: String },
    /// An OK that counted: the member recovered. `resolve`: every member has, and the
    /// workflow waits out the quiet period before resolving.
    Recovered { resolve: bool },
    /// A transition that changes nothing (an OK of no open episode, an OK older than its
    /// alarm's last ALARM, INSUFFICIENT_DATA).
    Ignored { reason: String },
}

impl Decision {
    /// The name recorded in the log and the projection.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Uncorrelated => "uncorrelated",
            Self::Opened => "opened",
            Self::Joined => "joined",
            Self::Flapping => "flapping",
            Self::UpdateLimit => "update-limit",
            Self::Muted { .. } => "muted",
            Self::Recovered { resolve: false } => "recovered",
            Self::Recovered { resolve: true } => "resolve-pending",
            Self::Ignored { .. } => "ignored",
        }
    }

    /// What the workflow does next: `created` or `updated` (deliver), `resolve-pending` (wait,
    /// then confirm), `none`.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Uncorrelated | Self::Opened => "created",
            Self::Joined => "updated",
            Self::Recovered { resolve: true } => "resolve-pending",
            _ => "none",
        }
    }
}

/// Decides `transition` of the group `group_key` against the group's stored episode
/// (`current`), and answers the episode to write (`None`: write nothing).
pub fn decide(
    config: &CorrelationConfig,
    group_key: &str,
    current: Option<&Episode>,
    transition: &Transition,
) -> (Decision, Option<Episode>) {
    if transition.state == StateValue::Alarm
        && config.honour_mute_rules
        && let Some(mute) = &transition.mute
        && mute.start <= transition.at
        && transition.at <= mute.end
    {
        return (
            Decision::Muted {
                rule: mute.muted_by_arn.clone(),
            },
            None,
        );
    }
    if !config.enabled() {
        return match transition.state {
            StateValue::Alarm => (Decision::Uncorrelated, None),
            _ => ignored("correlation is off"),
        };
    }
    match transition.state {
        StateValue::Alarm => decide_alarm(config, group_key, current, transition),
        StateValue::Ok => decide_ok(config, current, transition),
        StateValue::InsufficientData => ignored("INSUFFICIENT_DATA changes no episode"),
    }
}

fn ignored(reason: &str) -> (Decision, Option<Episode>) {
    (
        Decision::Ignored {
            reason: reason.to_owned(),
        },
        None,
    )
}

fn decide_alarm(
    config: &CorrelationConfig,
    group_key: &str,
    current: Option<&Episode>,
    transition: &Transition,
) -> (Decision, Option<Episode>) {
    let episode = match current {
        Some(episode) if episode.is_open_at(transition.at, config) => episode,
        Some(episode) => {
            let next = Episode::new(
                group_key,
                episode.number + 1,
                transition,
                episode.version + 1,
            );
            return (Decision::Opened, Some(next));
        }
        None => {
            return (
                Decision::Opened,
                Some(Episode::new(group_key, 1, transition, 1)),
            );
        }
    };
    let latest = |episode: &mut Episode| {
        episode.last_transition_at = episode.last_transition_at.max(transition.at);
        // A member back in ALARM cancels a resolve waiting out its quiet period.
        episode.resolve_pending = None;
    };
    if episode.members.iter().any(|m| m.alarm == transition.alarm) {
        let next = episode.next(|next| {
            latest(next);
            if let Some(member) = next.member_mut(&transition.alarm) {
                member.last_alarm_at = member.last_alarm_at.max(transition.at);
            }
        });
        return (Decision::Flapping, Some(next));
    }
    let member = Member {
        alarm: transition.alarm.clone(),
        alarm_name: transition.alarm_name.clone(),
        incident_id: transition.incident_id.clone(),
        last_alarm_at: transition.at,
        last_ok_at: None,
    };
    if episode.members.len() >= MAX_MEMBERS || episode.updates >= config.max_updates {
        // Past the update limit a member sends nothing, but is tracked (while there is room):
        // its ALARM keeps the episode open, its OK counts for resolving it.
        let next = episode.next(|next| {
            latest(next);
            if next.members.len() < MAX_MEMBERS {
                next.members.push(member);
            }
        });
        return (Decision::UpdateLimit, Some(next));
    }
    let next = episode.next(|next| {
        latest(next);
        next.updates += 1;
        next.members.push(member);
    });
    (Decision::Joined, Some(next))
}

fn decide_ok(
    config: &CorrelationConfig,
    current: Option<&Episode>,
    transition: &Transition,
) -> (Decision, Option<Episode>) {
    let Some(episode) = current.filter(|episode| episode.resolved_at.is_none()) else {
        return ignored("no open episode of this group");
    };
    let Some(member) = episode.members.iter().find(|m| m.alarm == transition.alarm) else {
        return ignored("the alarm is not a member of its group's episode");
    };
    if transition.at <= member.last_alarm_at {
        return ignored("older than the alarm's last ALARM");
    }
    let next = episode.next(|next| {
        next.last_transition_at = next.last_transition_at.max(transition.at);
        if let Some(member) = next.member_mut(&transition.alarm) {
            member.last_ok_at = Some(
                member
                    .last_ok_at
                    .map_or(transition.at, |ok| ok.max(transition.at)),
            );
        }
    });
    let resolve = config.resolve_on_ok && !next.members.iter().any(Member::in_alarm);
    let next = if resolve {
        let mut next = next;
        next.resolve_pending = Some(transition.incident_id.clone());
        next
    } else {
        next
    };
    (Decision::Recovered { resolve }, Some(next))
}

/// What the check after the quiet period found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Every member stayed recovered: `resolved` goes to the primary's investigation.
    Resolved,
    /// Nothing is sent: a member re-entered ALARM, a later OK took over the resolve, or the
    /// episode was resolved or replaced meanwhile.
    Cancelled { reason: String },
}

/// After the quiet period of the OK incident `incident_id`: resolves `current` when that
/// incident still holds its pending resolve and no member is in ALARM. `now` is when the
/// resolve is decided (the quiet period is measured in real time).
pub fn confirm_resolve(
    current: Option<&Episode>,
    incident_id: &IncidentId,
    now: DateTime<Utc>,
) -> (Confirmation, Option<Episode>) {
    let cancelled = |reason: &str| {
        (
            Confirmation::Cancelled {
                reason: reason.to_owned(),
            },
            None,
        )
    };
    let Some(episode) = current else {
        return cancelled("the episode is gone");
    };
    if episode.resolved_at.is_some() {
        return cancelled("the episode is resolved already");
    }
    if episode.resolve_pending.as_ref() != Some(incident_id) {
        return cancelled("a member re-entered ALARM, or a later recovery took over the resolve");
    }
    if episode.members.iter().any(Member::in_alarm) {
        return cancelled("a member re-entered ALARM during the quiet period");
    }
    let next = episode.next(|next| {
        next.resolve_pending = None;
        next.resolved_at = Some(now);
    });
    (Confirmation::Resolved, Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config() -> CorrelationConfig {
        CorrelationConfig {
            resolve_on_ok: true,
            ..CorrelationConfig::default()
        }
    }

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + minute * 60, 0).unwrap()
    }

    fn transition(alarm: &str, state: StateValue, minute: i64) -> Transition {
        Transition {
            incident_id: IncidentId::new(alarm, &minute.to_string()),
            alarm: format!("arn:aws:cloudwatch:us-east-1:1:alarm:{alarm}"),
            alarm_name: alarm.to_owned(),
            state,
            at: at(minute),
            mute: None,
        }
    }

    /// Runs transitions through `decide`, keeping the episode as the store would.
    fn run(
        config: &CorrelationConfig,
        transitions: &[Transition],
    ) -> (Vec<String>, Option<Episode>) {
        let mut episode = None;
        let mut decisions = Vec::new();
        for t in transitions {
            let (decision, next) = decide(config, "monitor:m", episode.as_ref(), t);
            decisions.push(decision.name().to_owned());
            if let Some(next) = next {
                assert_eq!(
                    next.version,
                    episode.as_ref().map_or(1, |e: &Episode| e.version + 1)
                );
                episode = Some(next);
            }
        }
        (decisions, episode)
    }

    use StateValue::{Alarm, Ok as Fine};

    #[test]
    fn a_storm_opens_once_and_joins_the_rest() {
        let (decisions, episode) = run(
            &config(),
            &[
                transition("Timeouts", Alarm, 0),
                transition("Retransmissions", Alarm, 1),
                transition("RoundTripTime", Alarm, 2),
                transition("Timeouts", Alarm, 3),
            ],
        );
        assert_eq!(decisions, ["opened", "joined", "joined", "flapping"]);
        let episode = episode.unwrap();
        assert_eq!(episode.primary_alarm_name, "Timeouts");
        assert_eq!(episode.updates, 2);
        assert_eq!(
            episode.member_names(),
            ["Timeouts", "Retransmissions", "RoundTripTime"]
        );
    }

    #[test]
    fn a_later_arriving_alarm_with_an_earlier_timestamp_joins() {
        let (decisions, episode) = run(
            &config(),
            &[transition("B", Alarm, 5), transition("A", Alarm, 2)],
        );
        assert_eq!(decisions, ["opened", "joined"]);
        assert_eq!(episode.unwrap().primary_alarm_name, "B");
    }

    #[test]
    fn the_window_runs_from_the_last_transition_once_all_recovered() {
        let (decisions, _) = run(
            &config(),
            &[
                transition("A", Alarm, 0),
                transition("A", Fine, 5),
                // 10 minutes after the OK: still the same episode, a flap.
                transition("A", Alarm, 15),
                transition("A", Fine, 16),
                // 11 minutes after the last transition: a new episode.
                transition("A", Alarm, 27),
            ],
        );
        assert_eq!(
            decisions,
            [
                "opened",
                "resolve-pending",
                "flapping",
                "resolve-pending",
                "opened"
            ]
        );
    }

    #[test]
    fn an_alarm_stuck_in_alarm_keeps_its_episode_only_up_to_the_maximum() {
        let config = CorrelationConfig {
            max_episode: Duration::from_secs(3600),
            ..config()
        };
        let (decisions, episode) = run(
            &config,
            &[
                transition("A", Alarm, 0),
                transition("B", Alarm, 50),
                transition("C", Alarm, 61),
            ],
        );
        assert_eq!(decisions, ["opened", "joined", "opened"]);
        let episode = episode.unwrap();
        assert_eq!(
            (episode.number, episode.primary_alarm_name.as_str()),
            (2, "C")
        );
    }

    #[test]
    fn updates_stop_at_the_limit() {
        let config = CorrelationConfig {
            max_updates: 1,
            ..config()
        };
        let (decisions, _) = run(
            &config,
            &[
                transition("A", Alarm, 0),
                transition("B", Alarm, 1),
                transition("C", Alarm, 2),
            ],
        );
        assert_eq!(decisions, ["opened", "joined", "update-limit"]);
        let (decisions, episode) = run(
            &config,
            &[
                transition("A", Alarm, 0),
                transition("B", Alarm, 1),
                transition("C", Alarm, 2),
                transition("C", Alarm, 3),
                transition("A", Fine, 4),
                transition("B", Fine, 4),
            ],
        );
        assert_eq!(decisions[3..], ["flapping", "recovered", "recovered"]);
        // C sent nothing but is tracked: still in ALARM, it holds the resolve back.
        assert!(
            episode
                .unwrap()
                .members
                .iter()
                .any(|m| m.alarm_name == "C" && m.in_alarm())
        );
    }

    #[test]
    fn an_ok_older_than_the_last_alarm_changes_nothing() {
        let (decisions, episode) = run(
            &config(),
            &[transition("A", Alarm, 5), transition("A", Fine, 4)],
        );
        assert_eq!(decisions, ["opened", "ignored"]);
        assert!(episode.unwrap().members[0].in_alarm());
    }

    #[test]
    fn resolve_waits_for_every_member_and_a_reentry_cancels_it() {
        let (decisions, episode) = run(
            &config(),
            &[
                transition("A", Alarm, 0),
                transition("B", Alarm, 1),
                transition("A", Fine, 2),
                transition("B", Fine, 3),
            ],
        );
        assert_eq!(
            decisions,
            ["opened", "joined", "recovered", "resolve-pending"]
        );
        let episode = episode.unwrap();
        let ok_b = transition("B", Fine, 3).incident_id;
        let (confirmed, closed) = confirm_resolve(Some(&episode), &ok_b, at(8));
        assert_eq!(confirmed, Confirmation::Resolved);
        assert_eq!(closed.unwrap().resolved_at, Some(at(8)));
        // A flap during the quiet period: the resolve is cancelled, nothing is sent.
        let (flap, reentered) = decide(
            &config(),
            "monitor:m",
            Some(&episode),
            &transition("A", Alarm, 4),
        );
        assert_eq!(flap, Decision::Flapping);
        let (confirmed, write) = confirm_resolve(reentered.as_ref(), &ok_b, at(8));
        assert!(matches!(confirmed, Confirmation::Cancelled { .. }) && write.is_none());
    }

    #[test]
    fn resolve_on_ok_off_still_counts_recoveries() {
        let config = CorrelationConfig::default();
        let (decisions, episode) = run(
            &config,
            &[transition("A", Alarm, 0), transition("A", Fine, 2)],
        );
        assert_eq!(decisions, ["opened", "recovered"]);
        assert!(!episode.unwrap().members[0].in_alarm());
    }

    #[test]
    fn a_muted_alarm_opens_nothing_unless_mute_rules_are_ignored() {
        let mut muted = transition("A", Alarm, 10);
        muted.mute = Some(MuteWindow {
            muted_by_arn: "arn:aws:cloudwatch:us-east-1:1:alarm-mute-rule:maintenance".into(),
            start: at(0),
            end: at(60),
        });
        let (decision, write) = decide(&config(), "monitor:m", None, &muted);
        assert!(matches!(decision, Decision::Muted { ref rule } if rule.ends_with("maintenance")));
        assert!(write.is_none());
        let ignoring = CorrelationConfig {
            honour_mute_rules: false,
            ..config()
        };
        assert_eq!(
            decide(&ignoring, "monitor:m", None, &muted).0,
            Decision::Opened
        );
        muted.at = at(61);
        assert_eq!(
            decide(&config(), "monitor:m", None, &muted).0,
            Decision::Opened
        );
    }

    #[test]
    fn a_window_of_zero_is_the_seed() {
        let config = CorrelationConfig {
            window: Duration::ZERO,
            ..config()
        };
        let (decisions, episode) = run(
            &config,
            &[
                transition("A", Alarm, 0),
                transition("A", Alarm, 1),
                transition("A", Fine, 2),
            ],
        );
        assert_eq!(decisions, ["uncorrelated", "uncorrelated", "ignored"]);
        assert!(episode.is_none());
    }

    #[test]
    fn the_group_key_is_the_tag_then_the_monitor_then_the_alarm() {
        let metric = include_str!("../tests/fixtures/metric-alarm.json");
        let event = AlarmEvent::parse(metric.as_bytes()).unwrap();
        let monitor =
            "monitor:arn:aws:networkflowmonitor:us-east-1:123456789012:monitor/my-monitor";
        assert_eq!(group_key(&event, None), monitor);
        assert_eq!(
            group_key(&event, Some(&serde_json::json!({"team": "db"}))),
            monitor
        );
        let tagged = serde_json::json!({GROUP_TAG: " checkout "});
        assert_eq!(group_key(&event, Some(&tagged)), "group:checkout");
        assert_eq!(
            group_key(&event, Some(&serde_json::json!({GROUP_TAG: ""}))),
            monitor
        );

        let mut raw: Value = serde_json::from_str(metric).unwrap();
        raw["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
            serde_json::json!({"MonitorName": "eks-db"});
        let by_name = AlarmEvent::from_value(raw.clone()).unwrap();
        assert_eq!(
            group_key(&by_name, None),
            "monitor:123456789012/us-east-1/eks-db"
        );
        raw["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["namespace"] =
            serde_json::json!("AWS/EC2");
        let other = AlarmEvent::from_value(raw).unwrap();
        assert_eq!(
            group_key(&other, None),
            "alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:NFM-Alarm-EKS-DB"
        );
    }

    #[test]
    fn mute_details_are_read_when_complete() {
        let raw = serde_json::json!({"detail": {"muteDetail": {
            "mutedByArn": "arn:aws:cloudwatch:us-east-1:1:alarm-mute-rule:patching",
            "muteWindowStart": "2026-11-24T09:00:00.000+0000",
            "muteWindowEnd": "2026-11-24T11:00:00Z"
        }}});
        let window = mute_window(&raw).unwrap();
        assert_eq!(Some(window.start), event_time("2026-11-24T09:00:00Z"));
        assert_eq!(Some(window.end), event_time("2026-11-24T11:00:00Z"));
        let mut partial = raw.clone();
        partial["detail"]["muteDetail"]["muteWindowEnd"] = serde_json::json!("soon");
        assert_eq!(mute_window(&partial), None);
        assert_eq!(mute_window(&serde_json::json!({"detail": {}})), None);
    }

    #[test]
    fn event_times_parse_as_cloudwatch_writes_them() {
        assert_eq!(
            event_time("2026-11-24T10:00:00.000+0000"),
            event_time("2026-11-24T10:00:00Z")
        );
        assert!(event_time("2026-11-24T12:00:00.000+0200") == event_time("2026-11-24T10:00:00Z"));
        assert_eq!(event_time("yesterday"), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn transitions() -> impl Strategy<Value = Vec<Transition>> {
            prop::collection::vec((0..4usize, any::<bool>(), 0..40i64), 1..40).prop_map(|items| {
                items
                    .into_iter()
                    .map(|(alarm, alarm_state, minute)| {
                        let state = if alarm_state { Alarm } else { Fine };
                        transition(["A", "B", "C", "D"][alarm], state, minute)
                    })
                    .collect()
            })
        }

        proptest! {
            /// Never two `created` for one open episode: whenever an ALARM opens, the episode
            /// it replaced (if any) was not open at that time.
            #[test]
            fn opens_only_when_no_episode_is_open(transitions in transitions()) {
                let config = config();
                let mut episode: Option<Episode> = None;
                for t in &transitions {
                    let (decision, next) = decide(&config, "g", episode.as_ref(), t);
                    if decision == Decision::Opened {
                        prop_assert!(episode.as_ref().is_none_or(|e| !e.is_open_at(t.at, &config)));
                    }
                    if matches!(decision, Decision::Flapping) {
                        prop_assert!(next.as_ref().is_some_and(|e| e.members.iter().any(|m| m.alarm == t.alarm)));
                    }
                    if let Some(next) = next {
                        episode = Some(next);
                    }
                }
            }

            /// The same events decide the same way on replay.
            #[test]
            fn replays_decide_the_same(transitions in transitions()) {
                let config = config();
                prop_assert_eq!(run(&config, &transitions), run(&config, &transitions));
            }
        }
    }
}
