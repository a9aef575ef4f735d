#!/usr/bin/env python3
"""Cold start of the Lambda bootstraps against the seed's Python handler (issue 13, goal 3).

    python3 benches/coldstart/run.py --bin-dir target/release --runs 20   # the full bench
    python3 benches/coldstart/run.py --bin-dir target/release --smoke     # 2 runs each (CI)

Every run is one fresh process: the bootstrap (``<bin-dir>/<function>``, or the seed's handler
under seed_bootstrap.py) is spawned with the Lambda environment under a minimal local Lambda
Runtime API (runtime_api.py) that hands it one event. **First response** is the time from just
before the spawn to the moment the Runtime API has read the whole response POST; **peak RSS**
is the process's VmHWM (/proc/<pid>/status) once it is blocked on its next
``/invocation/next`` (where a sandbox freezes), read just before the bench kills it. Not
``ru_maxrss`` from ``os.wait4``, which Linux inflates to the spawning bench's own RSS (see
``peak_rss_kib``); that value is kept in the JSON as ``ru_maxrss_kib``.

All functions meet the same services: moto_server (Secrets Manager, DynamoDB, Step Functions,
CloudWatch; fixtures.py sets them up as template.yaml declares them, and prepares each run's
input) reached through AWS_ENDPOINT_URL via tcp_proxy.py, which timestamps connections; and an
HTTPS receiver on loopback (receiver.py) whose certificate is signed by a CA the bench makes
(tls.py), trusted by every bootstrap through SSL_CERT_FILE. Runs are interleaved: each round
runs every function once, the order rotated every round. Figures are reported against the
seed's, measured in the same rounds. Nothing here asserts a timing: the exit status is non-zero
only when a run failed (an error answer, an init error, an exit or a timeout before the answer,
or an answer that did not do the work, e.g. no validly signed webhook reached the receiver).

On first use the bench creates benches/coldstart/.venv and installs moto[server], boto3 and
urllib3 (the seed's imports) and cryptography there, then re-runs itself with that Python.
"""
import sys

sys.dont_write_bytecode = True  # keep benches/coldstart free of __pycache__

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from bench_venv import ensure_venv  # noqa: E402  (benches/bench_venv.py)

REPO = HERE.parent.parent
VENV = HERE / ".venv"
REQUIREMENTS = ["moto[server]>=5.2,<6", "boto3", "urllib3", "cryptography"]
RUST_FUNCTIONS = ["intake", "enricher", "recorder", "signer", "sweeper"]
BASELINE = "seed"
RUN_TIMEOUT_S = 60  # twice the functions' Lambda timeout (30 s)


# --- helpers --------------------------------------------------------------------------------

class Failure(Exception):
    """A setup step that failed; the message names the step."""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, what, process, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Failure(f"{what} exited with status {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Failure(f"{what} did not listen on port {port} within {timeout_s} s")


def peak_rss_kib(pid):
    """The process's peak resident set since its exec: VmHWM of /proc/<pid>/status (KiB).

    Not ``ru_maxrss``: Linux carries the hiwater RSS of the memory image an exec replaces into
    the new program's ``ru_maxrss`` (exec_mmap), and posix_spawn's vfork child execs from the
    bench's own image (~64 MiB with boto3 and moto's client loaded), so ``ru_maxrss`` reads
    max(bench, bootstrap) for every function. VmHWM is that of the bootstrap's own image.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def end(process, grace_s=5):
    """Stops a helper process: SIGTERM, then SIGKILL if it is still there after ``grace_s``."""
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()


def tail(path, lines=15, redact=()):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no output)"
    for secret in redact:
        text = text.replace(secret, "[redacted]")
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty)"


class LineProcess:
    """A helper process that prints ``READY <port>`` and then lines the bench collects."""

    def __init__(self, name, argv, env, log):
        self.name = name
        self.lines = []
        self._lock = threading.Lock()
        self._log = open(log, "wb")
        self.process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                        stderr=self._log, text=True, bufsize=1)
        ready = self.process.stdout.readline().split()
        if len(ready) != 2 or ready[0] != "READY":
            raise Failure(f"{name} did not start (status {self.process.poll()}): "
                          f"{tail(log)}")
        self.port = int(ready[1])
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            with self._lock:
                self.lines.append(line.strip())

    def since(self, mark):
        with self._lock:
            return self.lines[mark:]

    def mark(self):
        with self._lock:
            return len(self.lines)

    def stop(self):
        end(self.process)
        self._log.close()


# --- machine and versions -------------------------------------------------------------------

def machine():
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "moto": version("moto"), "boto3": version("boto3"), "botocore": version("botocore"),
        "urllib3": version("urllib3"),
    }


# --- one run --------------------------------------------------------------------------------

class Bench:
    def __init__(self, args, work):
        self.args = args
        self.work = Path(work)
        self.webhook_secret = secrets.token_urlsafe(32)
        self.serial = 0
        self.services = []

    # services ---------------------------------------------------------------------------------

    def start(self):
        import boto3
        from fixtures import World
        from tls import make_certificates

        step = "certificates"
        try:
            self.certs = make_certificates(self.work)
            step = "moto_server"
            moto_port = free_port()
            self.moto_log = open(self.work / "moto.log", "wb")
            self.moto = subprocess.Popen(
                [str(VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                stdout=self.moto_log, stderr=subprocess.STDOUT)
            wait_for_port(moto_port, "moto_server", self.moto)
            helper_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
            step = "proxy"
            self.proxy = LineProcess("tcp_proxy", [sys.executable, str(HERE / "tcp_proxy.py"),
                                                   str(moto_port)], helper_env,
                                     self.work / "proxy.log")
            self.services.append(self.proxy)
            step = "receiver"
            self.receiver = LineProcess(
                "receiver", [sys.executable, str(HERE / "receiver.py")],
                {**helper_env, "RECEIVER_CERT": str(self.certs["cert"]),
                 "RECEIVER_KEY": str(self.certs["key"]), "RECEIVER_SECRET": self.webhook_secret},
                self.work / "receiver.log")
            self.services.append(self.receiver)
            step = "Network Flow Monitor fake"
            self.nfm = LineProcess("nfm_fake", [sys.executable, str(HERE / "nfm_fake.py"),
                                                str(REPO / "tests/fixtures/network-flow-monitor")],
                                   helper_env, self.work / "nfm.log")
            self.services.append(self.nfm)
            step = "moto resources (table, secrets, state machine)"
            session = boto3.session.Session(aws_access_key_id="testing",
                                            aws_secret_access_key="testing")
            self.world = World(session, f"http://127.0.0.1:{moto_port}", REPO,
                               f"https://127.0.0.1:{self.receiver.port}/webhook",
                               self.webhook_secret).create()
            self.environments = self.world.environments()
        except Failure as error:
            raise Failure(f"setup step '{step}' failed: {error}") from None
        except Exception as error:
            raise Failure(f"setup step '{step}' failed: {type(error).__name__}: {error}") from None
        self.endpoint = f"http://127.0.0.1:{self.proxy.port}"

    def stop(self):
        for service in self.services:
            service.stop()
        if getattr(self, "moto", None):
            end(self.moto)
            self.moto_log.close()

    # the Lambda environment -------------------------------------------------------------------

    def command(self, function):
        if function == BASELINE:
            return [sys.executable, str(HERE / "seed_bootstrap.py")]
        return [str(self.args.bin_dir / function)]

    def environment(self, function, runtime_api):
        from fixtures import REGION
        name = "devops-agent-webhook" if function == BASELINE else f"alarm-relay-{function}"
        home = self.work / "home"
        home.mkdir(exist_ok=True)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "HOME": str(home),  # empty: no ~/.aws/config or credentials file is read
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",  # template.yaml Globals MemorySize
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d") + "/[$LATEST]" + secrets.token_hex(16),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ENDPOINT_URL": self.endpoint,
            # moto has no Network Flow Monitor: the enricher's top-contributors calls go to
            # nfm_fake.py (the SDK's service-specific endpoint variable).
            "AWS_ENDPOINT_URL_NETWORKFLOWMONITOR": f"http://127.0.0.1:{self.nfm.port}",
            "AWS_EC2_METADATA_DISABLED": "true",
            "SSL_CERT_FILE": str(self.certs["ca"]),
            **self.environments[function],
        }
        if function == BASELINE:
            env.update({
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
                "LAMBDA_TASK_ROOT": str(HERE),
                "_HANDLER": "seed_handler.lambda_handler",
                # Lambda's /var/task is read-only: the handler's module is compiled at every
                # cold start there too (the site-packages' .pyc were written by pip).
                "PYTHONDONTWRITEBYTECODE": "1",
                # AWS's Python runtime (awslambdaric) wraps stdout/stderr unbuffered.
                "PYTHONUNBUFFERED": "1",
            })
        else:
            env.update({"AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
                        "LAMBDA_TASK_ROOT": str(self.args.bin_dir), "_HANDLER": "bootstrap"})
        return env

    # checks of the answer ---------------------------------------------------------------------

    @staticmethod
    def check_answer(function, answer):
        """None if the answer shows the function did its work, else why not."""
        try:
            value = json.loads(answer)
        except ValueError:
            return "the response is not JSON"
        if not isinstance(value, dict):
            return "the response is not a JSON object"
        if function == "intake" and (value.get("outcome"), value.get("status")) != ("recorded", "STARTED"):
            return "intake did not record and start the incident"
        if function == "enricher":
            if "alarm" not in value:
                return "the enrichment has no alarm settings (DescribeAlarms)"
            if not (value.get("network") or {}).get("topContributors"):
                return "the enrichment has no top contributors (the Network Flow Monitor fake)"
        if function == "recorder" and value.get("action") != "created":
            return "Correlate did not open an episode (action created)"
        if function == "signer":
            attempts = value.get("attempts") or [{}]
            if attempts[-1].get("statusCode") != 200:
                return "the delivery record's last attempt is not a 200"
        if function == "sweeper" and "found" not in value:
            return "the sweeper answered no report"
        if function == "seed" and value.get("statusCode") != 200:
            return "the seed did not answer statusCode 200"
        return None

    # the run ----------------------------------------------------------------------------------

    def run(self, function, counted):
        from fixtures import function_arn
        from runtime_api import RuntimeApi

        self.serial += 1
        label = f"{function}#{self.serial}"
        record = {"function": function, "counted": counted, "ok": False}
        try:
            event = self.world.prepare(function)
        except Exception as error:
            record["error"] = f"preparing the input failed: {type(error).__name__}: {error}"
            return record
        api = RuntimeApi(json.dumps(event).encode(), function_arn(function)).start()
        out, err = self.work / f"{label}.stdout", self.work / f"{label}.stderr"
        argv, env = self.command(function), self.environment(function, api.address)
        proxy_mark, receiver_mark = self.proxy.mark(), self.receiver.mark()
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, str(out), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
                   (os.POSIX_SPAWN_OPEN, 2, str(err), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
        started = time.monotonic_ns()
        try:
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
        except OSError as error:
            api.close()
            record["error"] = f"cannot spawn {argv[0]}: {error}"
            return record
        deadline = started + RUN_TIMEOUT_S * 10**9
        exited = None
        while not api.done.wait(0.002):
            reaped, status, usage = os.wait4(pid, os.WNOHANG)
            if reaped:
                exited = (status, usage)
                break
            if time.monotonic_ns() > deadline:
                break
        hwm = None
        if exited is None:
            # Answered: let it reach its next GET /invocation/next (where a sandbox freezes),
            # read its peak, then kill it.
            api.parked.wait(2.0)
            hwm = peak_rss_kib(pid)
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
        else:
            status, usage = exited
        api.close()
        outcome = api.outcome
        ms = lambda at: None if at is None else (at - started) / 1e6
        record.update({"rss_kib": hwm, "ru_maxrss_kib": usage.ru_maxrss,
                       "init_ms": ms(api.next_at_ns)})
        stderr_tail = lambda: tail(err, redact=[self.webhook_secret]) + (
            "\n(stdout) " + tail(out, 5, redact=[self.webhook_secret]))
        if outcome is None:
            how = (f"exited with status {os.waitstatus_to_exitcode(status)}" if exited
                   else f"gave no answer within {RUN_TIMEOUT_S} s")
            record["error"] = f"{how} before answering; stderr tail:\n{stderr_tail()}"
            return record
        record["first_response_ms"] = ms(outcome.at_ns)
        connections = [int(line) for line in self.proxy.since(proxy_mark)
                       if started <= int(line) <= outcome.at_ns]
        record["first_aws_ms"] = ms(connections[0]) if connections else None
        record["aws_connections_ms"] = [ms(at) for at in connections]
        if outcome.kind != "response":
            record["error"] = (f"{outcome.kind} ({outcome.error_type or 'no type'}): "
                               f"{outcome.text()}\nstderr tail:\n{stderr_tail()}")
            return record
        record["answer"] = outcome.text(400)
        problem = self.check_answer(function, outcome.body)
        if function in ("signer", BASELINE):
            posts = self._webhooks(receiver_mark)
            valid = [p for p in posts if p.get("valid")]
            if valid:
                record["webhook_ms"] = ms(valid[0]["at_ns"])
            if len(valid) != 1 or len(posts) != 1:
                problem = problem or (f"the receiver got {len(posts)} webhook(s), "
                                      f"{len(valid)} validly signed (expected exactly 1)")
        if problem:
            record["error"] = f"{problem}; response: {outcome.text(600)}"
            return record
        if record["rss_kib"] is None:
            record["error"] = "could not read the process's VmHWM before killing it"
            return record
        record["ok"] = True
        return record

    def _webhooks(self, mark):
        """The receiver's lines since ``mark`` (its reader thread may lag a moment)."""
        until = time.monotonic() + 1.0
        while True:
            lines = [json.loads(line) for line in self.receiver.since(mark)]
            if lines or time.monotonic() > until:
                return lines
            time.sleep(0.01)


# --- the report -----------------------------------------------------------------------------

def summary(values):
    return (min(values), statistics.median(values), max(values)) if values else None


def report(functions, runs, info, args):
    print(f"machine: {info['nproc']} CPU(s), {info['cpu']}, Linux {info['kernel']}; "
          f"Python {info['python']}")
    print(f"moto {info['moto']}, boto3 {info['boto3']} (botocore {info['botocore']}), "
          f"urllib3 {info['urllib3']}")
    print(f"runs: {args.runs} counted per function, interleaved (order rotated each round), "
          f"after {args.warmup} warm-up round(s)")
    print()
    counted = {f: [r for r in runs if r["function"] == f and r["counted"] and r["ok"]]
               for f in functions}
    medians = {}
    for f in functions:
        first = summary([r["first_response_ms"] for r in counted[f]])
        rss = summary([r["rss_kib"] / 1024 for r in counted[f]])
        medians[f] = (first[1] if first else None, rss[1] if rss else None)
    base = medians.get(BASELINE, (None, None))
    ratio = lambda value, baseline: (f"{value / baseline:.3f}×" if value is not None
                                     and baseline else "-")
    failures = {f: sum(1 for r in runs if r["function"] == f and not r["ok"]) for f in functions}
    header = (f"{'function':<10} {'runs':>4} {'fail':>4}  {'first response ms (min / median / max)':>40}"
              f"  {'× seed':>7}  {'peak RSS MiB (min / median / max)':>35}  {'× seed':>7}")
    print(header)
    print("-" * len(header))
    for f in functions:
        first = summary([r["first_response_ms"] for r in counted[f]])
        rss = summary([r["rss_kib"] / 1024 for r in counted[f]])
        fmt = lambda s, p: ("-" if s is None else
                            f"{s[0]:.{p}f} / {s[1]:.{p}f} / {s[2]:.{p}f}")
        print(f"{f:<10} {len(counted[f]):>4} {failures[f]:>4}  {fmt(first, 1):>40}  "
              f"{ratio(medians[f][0], base[0]):>7}  {fmt(rss, 1):>35}  "
              f"{ratio(medians[f][1], base[1]):>7}")
    print()
    print("where the time goes (medians, ms after spawn): init = first GET /invocation/next; "
          "first AWS = first connection to moto; webhook = signed POST read by the receiver")
    for f in functions:
        pick = lambda key: [r[key] for r in counted[f] if r.get(key) is not None]
        med = lambda key: (f"{statistics.median(pick(key)):.1f}" if pick(key) else "-")
        print(f"  {f:<10} init {med('init_ms'):>7}   first AWS {med('first_aws_ms'):>7}   "
              f"webhook {med('webhook_ms'):>7}   response {med('first_response_ms'):>7}")
    print()
    if "signer" in functions and BASELINE in functions:
        signer, seed = medians["signer"], medians[BASELINE]
        print(f"signer first response: {ratio(signer[0], seed[0])} the seed's (goal ≤ 0.10×)")
        print(f"signer peak RSS: {ratio(signer[1], seed[1])} the seed's (goal ≤ 0.25×)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", type=Path, default=REPO / "target" / "release",
                        help="where the Lambda binaries are (default: target/release)")
    parser.add_argument("--runs", type=int, default=20, help="counted runs per function")
    parser.add_argument("--warmup", type=int, default=1,
                        help="uncounted rounds first (page cache, moto's own first requests)")
    parser.add_argument("--smoke", action="store_true",
                        help="2 runs each and no warm-up: proves the bench works")
    parser.add_argument("--functions", default=",".join(RUST_FUNCTIONS + [BASELINE]),
                        help="comma-separated subset (the seed is the baseline)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="skip functions whose binary is missing instead of failing")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.warmup = 2, 0
    args.bin_dir = args.bin_dir.resolve()
    functions = [f.strip() for f in args.functions.split(",") if f.strip()]
    unknown = [f for f in functions if f not in RUST_FUNCTIONS + [BASELINE]]
    if unknown:
        parser.error(f"unknown function(s): {', '.join(unknown)}")
    missing = [f for f in functions if f != BASELINE and not os.access(args.bin_dir / f, os.X_OK)]
    if missing:
        message = f"no executable {', '.join(str(args.bin_dir / f) for f in missing)}"
        if not args.allow_missing:
            sys.exit(f"coldstart: {message} (build them, or pass --allow-missing)")
        print(f"coldstart: skipped, {message}", file=sys.stderr)
        functions = [f for f in functions if f not in missing]

    sys.path.insert(0, str(HERE))
    info = machine()
    work = tempfile.mkdtemp(prefix="alarm-relay-coldstart-")
    bench = Bench(args, work)
    runs = []
    try:
        bench.start()
        rounds = args.warmup + args.runs
        for number in range(rounds):
            shift = number % len(functions)
            for function in functions[shift:] + functions[:shift]:
                record = bench.run(function, counted=number >= args.warmup)
                try:
                    bench.world.clean()
                except Exception as error:
                    raise Failure(f"cleaning moto after {function} failed: "
                                  f"{type(error).__name__}: {error}") from None
                record["round"] = number
                runs.append(record)
                if not record["ok"]:
                    print(f"coldstart: {function} failed in round {number + 1}: "
                          f"{record['error']}", file=sys.stderr)
    except Failure as error:
        print(f"coldstart: {error}", file=sys.stderr)
        return 2
    finally:
        bench.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"coldstart: logs kept in {work}", file=sys.stderr)
    report(functions, runs, info, args)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": args.runs,
                                         "warmup": args.warmup, "functions": functions,
                                         "raw": runs}, indent=1))
    failed = [r for r in runs if not r["ok"]]
    if failed:
        print(f"\n{len(failed)} run(s) failed (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    ensure_venv(VENV, REQUIREMENTS, Path(__file__), "coldstart")
    sys.exit(main())
