//! `audit`: the operators' questions over the incident store — one incident's history, the
//! incidents in a status, one alarm's incidents, one episode group's incidents — on the local SQLite file (`--db`) or the
//! DynamoDB table (`--table`, with the usual AWS credentials and region).

use super::{CliError, write_stdout};
use crate::adapters::local::SqliteExecutions;
use crate::episode::Episode;
use crate::event::IncidentId;
use crate::incident::{Incident, IncidentEvent, IncidentStatus};
use crate::ports::IncidentStore;
use serde_json::{Value, json};
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("store").required(true).args(["db", "table"])))]
#[command(group(clap::ArgGroup::new("query").args(["incident", "status", "alarm", "episode"])))]
pub(super) struct AuditArgs {
    /// The local SQLite store (what `serve` and `demo` write).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// The DynamoDB incident table (AWS credentials and region from the environment).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// One incident: its projection and its whole event log.
    #[arg(long, value_name = "ID")]
    incident: Option<String>,
    /// Incidents in a status (RECEIVED, STARTED, ENRICHED, DELIVERED, FAILED, IGNORED, REJECTED,
    /// CORRELATED, SUPPRESSED, MUTED, RESOLVED), newest first.
    #[arg(long, value_name = "S")]
    status: Option<String>,
    /// One alarm's incidents, newest first.
    #[arg(long, value_name = "NAME")]
    alarm: Option<String>,
    /// The current episode of a group key (`monitor:…`, `group:…`, `alarm:…`, as
    /// `GET /incidents/{id}` shows it under `correlation`) and every incident of the group,
    /// newest first.
    #[arg(long, value_name = "GROUP_KEY")]
    episode: Option<String>,
    /// Only incidents of this AWS account (alarms of an organization's member accounts keep
    /// theirs).
    #[arg(long, value_name = "ACCOUNT")]
    account: Option<String>,
    /// With --status: only incidents updated at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Most incidents listed.
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(args: AuditArgs) -> Result<(), CliError> {
    let since = match &args.since {
        None => None,
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|at| crate::incident::timestamp(at.with_timezone(&chrono::Utc)))
                .map_err(|error| {
                    CliError::input("--since (RFC 3339, e.g. 2026-11-24T00:00:00Z)", error)
                })?,
        ),
    };
    let (store, executions) = open(&args).await?;
    let failed = |error| CliError::input("store", error);
    if let Some(id) = &args.incident {
        let id = IncidentId::from_raw(id.as_str());
        let incident = store
            .get(&id)
            .await
            .map_err(failed)?
            .ok_or_else(|| CliError::Failed(format!("no incident {id}")))?;
        let events = store.events(&id).await.map_err(failed)?;
        let history = match (&executions, &incident.execution_arn) {
            (Some(executions), Some(arn)) => executions
                .get(arn)
                .await
                .map_err(failed)?
                .map(|execution| execution.history().to_vec())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let history: Vec<Value> = history
            .iter()
            .filter_map(|event| serde_json::to_value(event).ok())
            .collect();
        let text = if args.json {
            format!(
                "{}\n",
                json!({ "incident": incident, "events": events, "history": history })
            )
        } else {
            describe(&incident, &events, &history)
        };
        return write_stdout(text.as_bytes());
    }
    if let Some(group_key) = &args.episode {
        let episode = store.episode(group_key).await.map_err(failed)?;
        let mut incidents = store
            .by_group(group_key, args.limit)
            .await
            .map_err(failed)?;
        of_account(&mut incidents, args.account.as_deref());
        if episode.is_none() && incidents.is_empty() {
            return Err(CliError::Failed(format!("no episode of {group_key}")));
        }
        let text = if args.json {
            format!(
                "{}\n",
                json!({ "episode": episode, "incidents": incidents })
            )
        } else {
            describe_episode(episode.as_ref(), &incidents)
        };
        return write_stdout(text.as_bytes());
    }
    let incidents = match (&args.status, &args.alarm) {
        (Some(status), _) => {
            let status: IncidentStatus = status
                .parse()
                .map_err(|error| CliError::input("--status", error))?;
            store
                .by_status(status, since.as_deref(), args.limit)
                .await
                .map_err(failed)?
        }
        (None, Some(alarm)) => store.by_alarm(alarm, args.limit).await.map_err(failed)?,
        (None, None) => {
            let mut all = Vec::new();
            for status in IncidentStatus::ALL {
                all.extend(
                    store
                        .by_status(status, since.as_deref(), args.limit)
                        .await
                        .map_err(failed)?,
                );
            }
            all.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
            all.truncate(args.limit);
            all
        }
    };
    let mut incidents = incidents;
    of_account(&mut incidents, args.account.as_deref());
    let text = if args.json {
        format!("{}\n", json!({ "incidents": incidents }))
    } else {
        list(&incidents)
    };
    write_stdout(text.as_bytes())
}

/// Keeps the incidents of `account`, when one is given.
fn of_account(incidents: &mut Vec<Incident>, account: Option<&str>) {
    if let Some(account) = account {
        incidents.retain(|incident| incident.account == account);
    }
}

/// The store, and for the local file the engine's executions (their history).
async fn open(
    args: &AuditArgs,
) -> Result<(Arc<dyn IncidentStore>, Option<SqliteExecutions>), CliError> {
    if let Some(path) = &args.db {
        if !path.exists() {
            return Err(CliError::Input(format!(
                "no database at {}",
                path.display()
            )));
        }
        let store = crate::adapters::SqliteStore::open(path)
            .map_err(|error| CliError::input(path.display(), error))?;
        let executions = SqliteExecutions::new(store.clone());
        return Ok((Arc::new(store), Some(executions)));
    }
    let table = args.table.clone().unwrap_or_default();
    Ok((open_table(table).await?, None))
}

#[cfg(feature = "aws")]
async fn open_table(table: String) -> Result<Arc<dyn IncidentStore>, CliError> {
    let aws = crate::adapters::aws::sdk::load().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    Ok(Arc::new(crate::adapters::aws::DynamoDbStore::new(
        client, table,
    )))
}

#[cfg(not(feature = "aws"))]
async fn open_table(_table: String) -> Result<Arc<dyn IncidentStore>, CliError> {
    Err(CliError::Input(
        "--table needs a build with the `aws` feature".to_owned(),
    ))
}

fn list(incidents: &[Incident]) -> String {
    if incidents.is_empty() {
        return "no incidents\n".to_owned();
    }
    let mut out = String::new();
    for incident in incidents {
        let _ = write!(
            out,
            "{}  {:<10}  {}",
            incident.updated_at, incident.status, incident.incident_id
        );
        if let Some(correlation) = &incident.correlation {
            let _ = write!(out, "  ({})", correlation.decision);
        }
        out.push('\n');
    }
    out
}

/// A group's current episode and its incidents, for people.
pub(super) fn describe_episode(episode: Option<&Episode>, incidents: &[Incident]) -> String {
    let mut out = String::new();
    if let Some(episode) = episode {
        let state = match (&episode.resolved_at, &episode.resolve_pending) {
            (Some(at), _) => format!("resolved at {}", crate::incident::timestamp(*at)),
            (None, Some(by)) => format!("resolving (quiet period of {by})"),
            (None, None) => "open or expired (by event time)".to_owned(),
        };
        let _ = writeln!(
            out,
            "episode    {} #{}: {state}",
            episode.group_key, episode.number
        );
        let _ = writeln!(
            out,
            "primary    {} ({})",
            episode.primary_incident_id, episode.primary_alarm_name
        );
        let _ = writeln!(
            out,
            "opened     {}, last transition {}, {} update(s)",
            crate::incident::timestamp(episode.opened_at),
            crate::incident::timestamp(episode.last_transition_at),
            episode.updates
        );
        let _ = writeln!(out, "members");
        for member in &episode.members {
            let _ = writeln!(
                out,
                "  {:<8} {}  last ALARM {}{}",
                if member.in_alarm() { "ALARM" } else { "OK" },
                member.alarm_name,
                crate::incident::timestamp(member.last_alarm_at),
                member
                    .last_ok_at
                    .map(|at| format!(", last OK {}", crate::incident::timestamp(at)))
                    .unwrap_or_default()
            );
        }
    }
    let _ = writeln!(out, "incidents (newest first)");
    out.push_str(&list(incidents));
    out
}

/// An incident's projection, its event log and its execution's history, for people.
pub(super) fn describe(incident: &Incident, events: &[IncidentEvent], history: &[Value]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "incident   {}", incident.incident_id);
    let _ = writeln!(
        out,
        "status     {} (version {}, {} events, {} delivery attempts)",
        incident.status, incident.version, incident.event_count, incident.attempts
    );
    if !incident.alarm_name.is_empty() {
        let _ = writeln!(
            out,
            "alarm      {}  {}",
            incident.alarm_name, incident.alarm_arn
        );
        let _ = writeln!(
            out,
            "state      {} at {} (account {}, {})",
            incident.state_value, incident.state_timestamp, incident.account, incident.region
        );
    }
    if let Some(correlation) = &incident.correlation {
        let _ = writeln!(
            out,
            "episode    {} ({}; primary {}; members {})",
            correlation.group_key,
            correlation.decision,
            correlation.primary_incident_id,
            correlation.members.join(", ")
        );
    }
    if let Some(arn) = &incident.execution_arn {
        let _ = writeln!(out, "execution  {arn}");
    }
    if let Some(error) = &incident.last_error {
        let _ = writeln!(out, "last error {error}");
    }
    let _ = writeln!(
        out,
        "recorded   {}, updated {}",
        incident.created_at, incident.updated_at
    );
    let _ = writeln!(out, "events");
    for event in events {
        let _ = writeln!(
            out,
            "  {:>3}  {}  {:<17} {}",
            event.seq,
            event.at,
            event.kind.as_str(),
            summary(event)
        );
    }
    if !history.is_empty() {
        let _ = writeln!(out, "execution history");
        for event in history {
            let _ = writeln!(out, "  {}", history_line(event));
        }
    }
    out
}

/// One GetExecutionHistory-shaped event on a line: id, time, type, and the state's name or
/// the error it carries.
fn history_line(event: &Value) -> String {
    let details = event
        .as_object()
        .and_then(|fields| fields.iter().find(|(key, _)| key.ends_with("EventDetails")))
        .map(|(_, details)| details);
    let text = |key: &str| details.and_then(|d| d.get(key)).and_then(Value::as_str);
    let about = match (text("name"), text("error")) {
        (Some(name), _) => name.to_owned(),
        (None, Some(error)) => format!("error {error}"),
        (None, None) => String::new(),
    };
    format!(
        "{:>3}  {}  {:<22} {about}",
        event["id"].as_u64().unwrap_or_default(),
        event["timestamp"].as_str().unwrap_or_default(),
        event["type"].as_str().unwrap_or_default(),
    )
}

/// One line about an event's data; the raw alarm event is summarised, not printed.
fn summary(event: &IncidentEvent) -> String {
    let data = &event.data;
    if let Some(raw) = data.get("event") {
        let state = raw
            .pointer("/detail/state/value")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        return format!("alarm event, state {state}");
    }
    let text = data.to_string();
    let cut: String = text.chars().take(160).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}
