"""A minimal Python Lambda runtime loop for the seed's handler (benches/coldstart/run.py).

What AWS's Python runtime does, reduced to what the bench needs: put LAMBDA_TASK_ROOT on
sys.path, import the module `_HANDLER` names (an import failure is POSTed to
/runtime/init/error), then loop: GET /runtime/invocation/next, call
`handler(event, context)`, POST the JSON result to /invocation/{id}/response or the exception
to /invocation/{id}/error, as the real runtime interface client does. Standard library only
(urllib.request for the Runtime API); the handler brings its own imports (boto3, urllib3).

It is lighter than the real runtime (awslambdaric has its own start-up cost on top), so the
seed's figures are, if anything, a little flattering for the seed.
"""
import importlib
import json
import os
import sys
import time
import traceback
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


class LambdaContext:
    """The attributes and method of the context object AWS's Python runtime passes."""

    def __init__(self, headers):
        self.aws_request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0"))
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def post(path, document, headers=None):
    request = urllib.request.Request(
        API + path,
        data=json.dumps(document).encode("utf-8"),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request) as answer:
        answer.read()


def error_document(error):
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def main():
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    module_name, function_name = os.environ["_HANDLER"].rsplit(".", 1)
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # the runtime reports any import failure as an init error
        post("/init/error", error_document(error),
             {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
        sys.exit(1)
    while True:
        with urllib.request.urlopen(API + "/invocation/next") as answer:
            headers = answer.headers
            event = json.loads(answer.read())
        context = LambdaContext(headers)
        trace = headers.get("Lambda-Runtime-Trace-Id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        request_id = context.aws_request_id
        try:
            result = handler(event, context)
        except Exception as error:
            post(f"/invocation/{request_id}/error", error_document(error),
                 {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
            continue
        post(f"/invocation/{request_id}/response", result)


if __name__ == "__main__":
    main()
