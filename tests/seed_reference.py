#!/usr/bin/env python3
"""The seed Lambda's webhook body and signature, as a reference for tests/it/seed_compat.rs.

Reads JSON lines {"event": {...}, "secret": "...", "timestamp": "..."} on stdin and writes one
line per input: {"body": <json.dumps(payload)>, "signature": <base64 HMAC>}, or {"error": ...}
when the seed itself would raise. Standard library only.

Lines marked "seed" are copied from the seed's lambda_handler. Deliberate differences: no
`print` of the event, no early return for non-ALARM states (every state is rendered), and the
webhook timestamp and secret come from the input instead of the clock and Secrets Manager.
"""
import base64
import hashlib
import hmac
import json
import sys
from datetime import datetime


def payload_json(event):
    detail = event.get('detail', {})  # seed
    alarm_name = detail.get('alarmName', 'Unknown')  # seed
    state = detail.get('state', {})  # seed
    new_state = state.get('value', 'ALARM')  # seed
    reason = state.get('reason', '')  # seed
    timestamp = state.get('timestamp', datetime.utcnow().isoformat())  # seed
    region = event.get('region', 'us-east-1')  # seed
    account_id = event.get('account', '')  # seed
    # (seed: `if new_state != 'ALARM': return ...` -- omitted, every state is rendered)
    config = detail.get('configuration', {})  # seed
    metrics = config.get('metrics', [])  # seed
    metric_info = ""  # seed
    if metrics:  # seed
        metric = metrics[0].get('metricStat', {}).get('metric', {})  # seed
        metric_info = f"\nMetric: {metric.get('namespace', '')}/{metric.get('name', '')}"  # seed
        dims = metric.get('dimensions', {})  # seed
        if dims:  # seed
            metric_info += f"\nDimensions: {json.dumps(dims)}"  # seed
    description = f"CloudWatch Alarm: {alarm_name}\n"  # seed
    description += f"AWS Account: {account_id}\nRegion: {region}\n"  # seed
    description += f"State: {new_state}\nReason: {reason}"  # seed
    description += metric_info  # seed
    payload = {  # seed (whole literal)
        "eventType": "incident",
        "incidentId": f"{alarm_name}-{timestamp}",
        "action": "created",
        "priority": "HIGH",
        "title": f"CloudWatch Alarm: {alarm_name}",
        "description": description,
        "timestamp": timestamp,
        "service": alarm_name,
        "data": {
            "metadata": {
                "alarmName": alarm_name,
                "region": region,
                "accountId": account_id,
                "newState": new_state,
                "reason": reason,
                "alarmArn": event.get('resources', [''])[0],
                "metrics": metrics
            }
        }
    }
    return json.dumps(payload)  # seed: payload_json = json.dumps(payload)


def signature(webhook_secret, event_timestamp, payload_json):
    signature_string = f"{event_timestamp}:{payload_json}"  # seed
    signature = hmac.new(  # seed
        webhook_secret.encode('utf-8'),
        signature_string.encode('utf-8'),
        hashlib.sha256
    ).digest()
    return base64.b64encode(signature).decode('utf-8')  # seed: signature_b64


def main():
    out = []
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        # The Lambda runtime hands the handler json.loads(<event bytes>).
        request = json.loads(line.decode('utf-8'))
        try:
            body = payload_json(request["event"])
            result = {"body": body, "signature": signature(request["secret"], request["timestamp"], body)}
        except Exception as error:  # the seed would crash on this event
            result = {"error": f"{type(error).__name__}: {error}"}
        out.append(json.dumps(result) + "\n")
    sys.stdout.write("".join(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
