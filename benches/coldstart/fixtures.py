"""The AWS side of the cold-start bench, on moto, and each function's first event.

Set up once (``World.create``):
- the incident table exactly as template.yaml declares it (keys pk/sk, the ByStatus, ByAlarm,
  Outbox and ByGroup indexes projecting ALL, on-demand, TTL on expiresAt);
- the webhook secrets, ``{"WEBHOOK_URL", "WEBHOOK_SECRET"}`` (src/secret.rs; the seed
  article's shape): ``alarm-relay/webhook`` for the signer (its SECRET_ARN) and the article's
  ``devops-agent-webhook`` for the seed, both pointing at the bench's HTTPS receiver;
- the incident state machine, statemachine/incident.asl.json with its ``${…}`` function ARNs
  substituted as SAM does (moto records StartExecution and, unconfigured, executes nothing).

Per run (``World.prepare``, and ``World.clean`` after it), so that every run of a function
does the same work: a fresh alarm (its own name, and its own Network Flow Monitor ARN so the
recorder's Correlate opens a new episode each time), built from tests/fixtures/metric-alarm.json;
for the enricher the alarm in moto's CloudWatch (DescribeAlarms); for the enricher, recorder
and signer the incident already in the table, in the state the workflow leaves it before their
state (what intake and the earlier states would have written, in
src/adapters/aws/dynamodb_store.rs's item layout).
"""
import copy
import hashlib
import json
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

ACCOUNT = "123456789012"
REGION = "us-east-1"
TABLE = "alarm-relay-IncidentTable-BENCH"
STATE_MACHINE = "alarm-relay-incident"
SIGNER_SECRET = "alarm-relay/webhook"
SEED_SECRET = "devops-agent-webhook"
INCIDENT_TTL_DAYS = 90


def function_arn(name):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:alarm-relay-{name}"


def now_utc():
    return datetime.now(timezone.utc)


def iso_millis(at):
    """RFC 3339 with milliseconds and Z, as the store writes createdAt/updatedAt."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def alarm_timestamp(at):
    """CloudWatch's state.timestamp format: 2026-11-24T10:00:00.000+0000."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def execution_name(incident_id, alarm_name):
    """src/incident.rs execution_name: the sanitised alarm name, '-', 32 hex of the id's hash."""
    digest = hashlib.sha256(incident_id.encode()).hexdigest()[:32]
    prefix = "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "-" for c in alarm_name)
    return f"{prefix[:80 - len(digest) - 1]}-{digest}"


class World:
    """The moto resources and the per-run inputs."""

    def __init__(self, session, endpoint, repo, receiver_url, webhook_secret):
        self.repo = Path(repo)
        self.endpoint = endpoint
        self.receiver_url = receiver_url
        self._webhook_secret = webhook_secret
        client = lambda service: session.client(service, endpoint_url=endpoint, region_name=REGION)
        self.dynamodb = client("dynamodb")
        self.secretsmanager = client("secretsmanager")
        self.stepfunctions = client("stepfunctions")
        self.cloudwatch = client("cloudwatch")
        self.template_event = json.loads((self.repo / "tests/fixtures/metric-alarm.json").read_text())
        self.signer_secret_arn = None
        self.seed_secret_arn = None
        self.state_machine_arn = None
        self._serial = 0
        self._alarms = []

    # --- once -------------------------------------------------------------------------------

    def create(self):
        self._table()
        document = json.dumps({"WEBHOOK_URL": self.receiver_url,
                               "WEBHOOK_SECRET": self._webhook_secret})
        self.signer_secret_arn = self.secretsmanager.create_secret(
            Name=SIGNER_SECRET, SecretString=document)["ARN"]
        self.seed_secret_arn = self.secretsmanager.create_secret(
            Name=SEED_SECRET, SecretString=document)["ARN"]
        definition = (self.repo / "statemachine/incident.asl.json").read_text()
        for key, name in (("EnricherFunctionArn", "enricher"), ("SignerFunctionArn", "signer"),
                          ("RecorderFunctionArn", "recorder")):
            definition = definition.replace("${" + key + "}", function_arn(name))
        self.state_machine_arn = self.stepfunctions.create_state_machine(
            name=STATE_MACHINE, definition=definition, type="STANDARD",
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/alarm-relay-IncidentStateMachineRole-BENCH",
        )["stateMachineArn"]
        return self

    def _table(self):
        names = ["pk", "sk", "status", "updatedAt", "alarmName", "createdAt", "outbox", "groupKey"]
        index = lambda name, hash_key, range_key: {
            "IndexName": name,
            "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                          {"AttributeName": range_key, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }
        self.dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in names],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                index("ByStatus", "status", "updatedAt"),
                index("ByAlarm", "alarmName", "createdAt"),
                index("Outbox", "outbox", "createdAt"),
                index("ByGroup", "groupKey", "createdAt"),
            ],
        )
        self.dynamodb.get_waiter("table_exists").wait(TableName=TABLE)
        self.dynamodb.update_time_to_live(
            TableName=TABLE,
            TimeToLiveSpecification={"AttributeName": "expiresAt", "Enabled": True})

    # --- the functions' environments (template.yaml, with its parameters' defaults) -----------

    def environments(self):
        common = {"RUST_LOG": "info"}  # Globals: RUST_LOG: !Ref RustLog (default info)
        correlation = {
            "CORRELATION_WINDOW_SECONDS": "600",
            "MAX_EPISODE_SECONDS": "86400",
            "MAX_UPDATES_PER_EPISODE": "20",
            "RESOLVE_ON_OK": "false",
            "RESOLVE_QUIET_SECONDS": "300",
            "HONOUR_MUTE_RULES": "true",
        }
        return {
            "intake": {**common, "TABLE_NAME": TABLE, "STATE_MACHINE_ARN": self.state_machine_arn,
                       "INCIDENT_TTL_DAYS": str(INCIDENT_TTL_DAYS),
                       "CORRELATION_WINDOW_SECONDS": "600"},
            "sweeper": {**common, "TABLE_NAME": TABLE, "STATE_MACHINE_ARN": self.state_machine_arn,
                        "INCIDENT_TTL_DAYS": str(INCIDENT_TTL_DAYS),
                        "SWEEP_GRACE_SECONDS": "120", "SWEEP_BATCH": "100"},
            "enricher": {**common, "TABLE_NAME": TABLE, "MEMBER_READ_ROLE_NAME": "",
                         "RELAY_ACCOUNT_ID": ACCOUNT, "TOP_CONTRIBUTORS": "10",
                         "TOP_CONTRIBUTORS_CATEGORIES": "INTRA_AZ,INTER_AZ,INTER_VPC,INTER_REGION",
                         "TOP_CONTRIBUTORS_WAIT_SECONDS": "10"},
            "signer": {**common, "SECRET_ARN": self.signer_secret_arn, "TABLE_NAME": TABLE,
                       "SECRET_TTL_SECONDS": "300", "WEBHOOK_CONNECT_TIMEOUT_MS": "3000",
                       "WEBHOOK_TIMEOUT_MS": "10000", "DELIVERY_MODE": "live",
                       "DESTINATION_SECRET_PREFIX": "alarm-relay/destinations/",
                       "ACCOUNT_DESTINATIONS": "", "DEFAULT_PRIORITY": "HIGH"},
            "recorder": {**common, "TABLE_NAME": TABLE, **correlation},
            # The article: "Environment variable: SECRET_ARN - ARN of the Secrets Manager secret".
            "seed": {"SECRET_ARN": self.seed_secret_arn},
        }

    # --- per run ----------------------------------------------------------------------------

    def alarm_event(self, tag):
        """tests/fixtures/metric-alarm.json as a new transition of a new alarm, now."""
        at = now_utc()
        event = copy.deepcopy(self.template_event)
        name = f"NFM-Alarm-bench-{tag}"
        monitor = f"arn:aws:networkflowmonitor:{REGION}:{ACCOUNT}:monitor/bench-{tag}"
        event["id"] = secrets.token_hex(16)
        event["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        event["resources"] = [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"]
        detail = event["detail"]
        detail["alarmName"] = name
        detail["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
            "MonitorId": monitor}
        detail["previousState"]["timestamp"] = alarm_timestamp(at - timedelta(minutes=5))
        detail["state"]["timestamp"] = alarm_timestamp(at)
        return event

    def prepare(self, function):
        """The first event of one run of ``function``, and what it must find in moto."""
        self._serial += 1
        tag = f"{function}-{self._serial}-{secrets.token_hex(3)}"
        event = self.alarm_event(tag)
        incident_id = f"{event['detail']['alarmName']}-{event['detail']['state']['timestamp']}"
        if function in ("intake", "seed"):
            return event  # EventBridge's event, as the rule delivers it
        if function == "sweeper":
            return {
                "version": "0", "id": secrets.token_hex(16), "detail-type": "Scheduled Event",
                "source": "aws.events", "account": ACCOUNT,
                "time": now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"), "region": REGION,
                "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/alarm-relay-SweeperFunctionSweep-BENCH"],
                "detail": {},
            }
        enrichment = {"tags": {"team": "network"}}
        if function == "enricher":
            self._put_alarm(event)
            self._put_incident(event, "STARTED")
            return {"incidentId": incident_id, "event": event}  # the Enrich state's Payload
        if function == "recorder":
            self._put_incident(event, "ENRICHED")
            return {"step": "Correlate", "incidentId": incident_id, "event": event,
                    "enriched": {"enrichment": enrichment}}
        if function == "signer":
            monitor = event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"][
                "dimensions"]["MonitorId"]
            decision = {
                "step": "Correlate", "decision": "opened", "action": "created",
                "groupKey": f"monitor:{monitor}", "groupedBy": "monitor",
                "primaryIncidentId": incident_id, "incidentId": incident_id, "episode": 1,
                "members": [event["detail"]["alarmName"]],
            }
            self._put_incident(event, "ENRICHED", decision)
            name = execution_name(incident_id, event["detail"]["alarmName"])
            return {  # the Deliver state's Payload
                "incidentId": incident_id, "event": event,
                "enriched": {"enrichment": enrichment},
                "execution": {"arn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STATE_MACHINE}:{name}",
                              "retryCount": 0},
                "correlation": decision,
            }
        raise ValueError(f"unknown function {function}")

    def clean(self):
        """Empties the table and deletes the runs' alarms, between runs (untimed).

        moto's TransactWriteItems deep-copies every table first (to roll back), so its cost
        grows with the items earlier runs left: without this, every DynamoDB-writing function
        would get slower round after round, for a reason that is moto's alone.
        """
        keys = []
        for page in self.dynamodb.get_paginator("scan").paginate(
                TableName=TABLE, ProjectionExpression="pk, sk"):
            keys.extend(page["Items"])
        for start in range(0, len(keys), 25):
            self.dynamodb.batch_write_item(RequestItems={TABLE: [
                {"DeleteRequest": {"Key": key}} for key in keys[start:start + 25]]})
        if self._alarms:
            self.cloudwatch.delete_alarms(AlarmNames=self._alarms)
            self._alarms = []

    def _put_alarm(self, event):
        """The event's alarm in moto's CloudWatch, as the article creates it (Step 2), tagged."""
        detail = event["detail"]
        metric = detail["configuration"]["metrics"][0]["metricStat"]
        self._alarms.append(detail["alarmName"])
        self.cloudwatch.put_metric_alarm(
            AlarmName=detail["alarmName"],
            AlarmDescription=detail["configuration"].get("description", ""),
            Namespace=metric["metric"]["namespace"], MetricName=metric["metric"]["name"],
            Dimensions=[{"Name": k, "Value": v} for k, v in metric["metric"]["dimensions"].items()],
            Statistic="Sum", Period=300, EvaluationPeriods=1, DatapointsToAlarm=1, Threshold=50.0,
            ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
            Tags=[{"Key": "team", "Value": "network"}],
        )

    def _put_incident(self, event, status, decision=None):
        """The incident's STATE item and log as intake (Received, ExecutionStarted) and, for
        ENRICHED, the Enrich state (Enriched) and, with ``decision``, Correlate wrote them."""
        at = now_utc()
        stamp = iso_millis(at)
        detail = event["detail"]
        incident_id = f"{detail['alarmName']}-{detail['state']['timestamp']}"
        name = execution_name(incident_id, detail["alarmName"])
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STATE_MACHINE}:{name}"
        expires = int(at.timestamp()) + INCIDENT_TTL_DAYS * 86400
        log = [("Received", {"event": event}),
               ("ExecutionStarted", {"executionName": name, "executionArn": arn})]
        if status == "ENRICHED":
            log.append(("Enriched", {"tags": {"team": "network"}}))
        if decision is not None:
            log.append(("Correlated", decision))
        S = lambda text: {"S": text}
        N = lambda number: {"N": str(number)}
        pk = f"INCIDENT#{incident_id}"
        state = {
            "pk": S(pk), "sk": S("STATE"), "incidentId": S(incident_id), "status": S(status),
            "alarmName": S(detail["alarmName"]), "alarmArn": S(event["resources"][0]),
            "account": S(event["account"]), "region": S(event["region"]),
            "stateValue": S(detail["state"]["value"]),
            "stateTimestamp": S(detail["state"]["timestamp"]),
            "eventSha256": S(hashlib.sha256(json.dumps(event).encode()).hexdigest()),
            "executionName": S(name), "executionArn": S(arn), "attempts": N(0),
            "version": N(len(log) + 1), "eventCount": N(len(log)),
            "createdAt": S(stamp), "updatedAt": S(stamp), "expiresAt": N(expires),
        }
        if decision is not None:
            state["correlation"] = {"M": {
                "groupKey": S(decision["groupKey"]),
                "primaryIncidentId": S(decision["primaryIncidentId"]),
                "decision": S(decision["decision"]),
                "members": {"L": [S(m) for m in decision["members"]]},
            }}
            state["groupKey"] = S(decision["groupKey"])
        items = [state] + [
            {"pk": S(pk), "sk": S(f"EVENT#{seq:010d}"), "seq": N(seq), "type": S(kind),
             "at": S(stamp), "data": S(json.dumps(data)), "expiresAt": N(expires)}
            for seq, (kind, data) in enumerate(log, start=1)
        ]
        self.dynamodb.transact_write_items(
            TransactItems=[{"Put": {"TableName": TABLE, "Item": item}} for item in items])
