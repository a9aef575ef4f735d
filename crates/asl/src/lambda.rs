//! The two Lambda task resources the local engine runs, and the service integration's result.

use serde_json::{Value, json};

/// The `lambda:invoke` service-integration resource.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// Whether `resource` is a Lambda function ARN
/// (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`), which a Task may name directly.
pub fn is_function_arn(resource: &str) -> bool {
    let parts: Vec<&str> = resource.split(':').collect();
    let name_ok = |name: &str| {
        (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let qualifier_ok = |q: &str| {
        q == "$LATEST"
            || (!q.is_empty()
                && q.len() <= 128
                && q.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    };
    match parts.as_slice() {
        [
            "arn",
            partition,
            "lambda",
            region,
            account,
            "function",
            rest @ ..,
        ] => {
            partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && match rest {
                    [name] => name_ok(name),
                    [name, qualifier] => name_ok(name) && qualifier_ok(qualifier),
                    _ => false,
                }
        }
        _ => false,
    }
}

/// The function an [`Action::Invoke`](crate::Action::Invoke) calls: `Parameters.FunctionName`
/// for `lambda:invoke` (whose payload is `Parameters.Payload`), or the resource itself when it
/// is a function ARN (whose payload is the whole `parameters`). `None` for other resources or
/// a `FunctionName` that is not a string.
pub fn function_name(parameters: &Value, resource: &str) -> Option<String> {
    if resource == LAMBDA_INVOKE {
        parameters.get("FunctionName")?.as_str().map(str::to_owned)
    } else if is_function_arn(resource) {
        Some(resource.to_owned())
    } else {
        None
    }
}

/// The `lambda:invoke` service-integration result wrapping a function's output `payload`, in
/// the shape Step Functions returns it (`Payload`, `StatusCode` 200, the SDK metadata). The
/// request id is fixed, as the local engine makes no HTTP request.
pub fn lambda_invoke_result(payload: Value) -> Value {
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "Content-Type": ["application/json"],
                "X-Amz-Executed-Version": ["$LATEST"]
            },
            "HttpHeaders": {
                "Content-Type": "application/json",
                "X-Amz-Executed-Version": "$LATEST"
            },
            "HttpStatusCode": 200
        },
        "SdkResponseMetadata": {
            "RequestId": "00000000-0000-0000-0000-000000000000"
        },
        "StatusCode": 200
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_function_arns() {
        assert!(is_function_arn(
            "arn:aws:lambda:eu-west-1:123456789012:function:alarm-relay-signer"
        ));
        assert!(is_function_arn(
            "arn:aws:lambda:eu-west-1:123456789012:function:f:$LATEST"
        ));
        assert!(is_function_arn(
            "arn:aws:lambda:eu-west-1:123456789012:function:f:live"
        ));
        assert!(!is_function_arn("arn:aws:lambda:eu-west-1:1234:function:f"));
        assert!(!is_function_arn("arn:aws:states:::lambda:invoke"));
        assert!(!is_function_arn(
            "arn:aws:lambda:eu-west-1:123456789012:function:"
        ));
    }

    #[test]
    fn names_the_function() {
        let parameters =
            json!({"FunctionName": "arn:aws:lambda:r:123456789012:function:f", "Payload": {}});
        assert_eq!(
            function_name(&parameters, LAMBDA_INVOKE).as_deref(),
            Some("arn:aws:lambda:r:123456789012:function:f")
        );
        let arn = "arn:aws:lambda:r:123456789012:function:g";
        assert_eq!(function_name(&json!({}), arn).as_deref(), Some(arn));
        assert_eq!(
            function_name(&json!({}), "arn:aws:states:::sqs:sendMessage"),
            None
        );
    }

    #[test]
    fn wraps_the_payload() {
        let result = lambda_invoke_result(json!({"ok": true}));
        assert_eq!(result["Payload"], json!({"ok": true}));
        assert_eq!(result["StatusCode"], 200);
        assert_eq!(result["ExecutedVersion"], "$LATEST");
    }
}
