"""Start moto_server with fixes for Step Functions and S3 defects of moto 5.2.x.

Usage: python3 moto_launcher.py [moto_server arguments, e.g. -H 127.0.0.1 -p 5000]

Patches are applied as moto imports its Step Functions modules (on the first Step Functions
request), each only where the installed moto still has the defect; stderr tells which:

  sfn-deepcopy      StartExecution snapshots the state machine with copy.deepcopy, which also
                    copies earlier executions (live threads and locks): every StartExecution
                    after the first fails with "cannot pickle '_thread.RLock'". The snapshot now
                    gets empty execution lists and shares the backend (fixed upstream by
                    getmoto/moto PR #10093).
  sfn-execution-name  An execution started without a name is named "None"; it now gets a UUID,
                    as on AWS.
  sfn-wait-scale    Wait states and Retry intervals sleep for real. SDSOPS_SFN_WAIT_SCALE
                    (float, default 1) multiplies those sleeps; 0 means no sleeping. The same
                    scale shortens the 0.5 s poll of nested executions (at least 50 ms).
  sfn-nested        Nested executions (arn:aws:states:::states:startExecution.sync:2) fail
                    with States.Runtime 'StateMachineArn': the Step Functions integration
                    passes ASL's StateMachineArn/Input/Name to boto3 unchanged, and hands
                    back boto3's camelCase responses. Requests are now translated to the
                    API's member names and responses to ASL's PascalCase, with dates as epoch
                    milliseconds, as on AWS: the result is {ExecutionArn, Status, Output, ...}
                    and a failed child gives States.TaskFailed with its DescribeExecution as
                    JSON in the cause.
  s3-multipart-lock CreateMultipartUpload ignores the Object Lock headers
                    (x-amz-object-lock-mode, x-amz-object-lock-retain-until-date): the
                    completed object was not locked, where S3 locks it. They are now kept
                    with the upload (refused with InvalidRequest, as by S3, on a bucket
                    without Object Lock) and put on the object its completion stores.

Exit status 3 with a one-line message means moto is not importable by this interpreter;
exit status 4, that its version is outside the range these patches were written and checked
for (MOTO_VERSIONS; requirements-dev.txt pins one inside it).
"""

import importlib.abc
import importlib.util
import os
import re
import sys
import time
import uuid

EXIT_MOTO_MISSING = 3
EXIT_MOTO_VERSION = 4

# moto versions whose Step Functions internals the patches below know: from the first up to,
# not including, the second.
MOTO_VERSIONS = ((5, 2, 1), (5, 3, 0))


def log(msg):
    print("moto_launcher: " + msg, file=sys.stderr, flush=True)


def wait_scale():
    raw = os.environ.get("SDSOPS_SFN_WAIT_SCALE", "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        log("ignoring SDSOPS_SFN_WAIT_SCALE=%r: not a number" % raw)
        return 1.0
    return max(value, 0.0)


def _source(obj):
    import inspect

    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


class _SnapshotCopy:
    """Stands in for the copy module inside moto's parser models.

    deepcopy of a state machine keeps the backend shared and leaves the executions (which
    hold running threads) out of the snapshot.
    """

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def deepcopy(self, x, memo=None):
        memo = {} if memo is None else memo
        owners = [x]
        versions = getattr(x, "versions", None)
        if isinstance(versions, dict):
            owners.extend(versions.values())
        for owner in owners:
            executions = getattr(owner, "executions", None)
            if isinstance(executions, list):
                memo[id(executions)] = []
        backend = getattr(x, "backend", None)
        if backend is not None:
            memo[id(backend)] = backend
        return self._real.deepcopy(x, memo)


def patch_deepcopy(models):
    backend = getattr(models, "StepFunctionsParserBackend", None)
    src = _source(getattr(backend, "start_execution", None))
    if "copy.deepcopy(state_machine)" not in src or not hasattr(models, "copy"):
        return None
    if not isinstance(models.copy, _SnapshotCopy):
        models.copy = _SnapshotCopy(models.copy)
    return "sfn-deepcopy"


def patch_execution_name(models):
    backend = getattr(models, "StepFunctionsParserBackend", None)
    original = getattr(backend, "start_execution", None)
    if original is None or getattr(original, "_sdsops_named", False):
        return None
    src = _source(original)
    if src and "uuid" in src:
        return None  # this moto names executions itself

    def start_execution(self, state_machine_arn, name=None, *args, **kwargs):
        if not name:
            name = str(uuid.uuid4())
        return original(self, state_machine_arn, name, *args, **kwargs)

    start_execution._sdsops_named = True
    backend.start_execution = start_execution
    return "sfn-execution-name"


class _ScaledTime:
    """Stands in for the time module where moto sleeps between Retry attempts."""

    def __init__(self, real, scale):
        self._real = real
        self._scale = scale

    def __getattr__(self, name):
        return getattr(self._real, name)

    def sleep(self, seconds):
        seconds = float(seconds) * self._scale
        if seconds > 0:
            self._real.sleep(seconds)


def patch_wait(wait_function, scale):
    cls = getattr(wait_function, "WaitFunction", None)
    if cls is None or not hasattr(cls, "_wait_interval"):
        return None

    def _wait_interval(self, env, wait_seconds):
        deadline = time.monotonic() + max(float(wait_seconds), 0.0) * scale
        # program_state_event fires when the execution stops; keep waiting through
        # unrelated wake-ups while the execution still runs.
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    cls._wait_interval = _wait_interval
    return "sfn-wait-scale(%g)" % scale


def patch_retry(retrier_decl, scale):
    if not hasattr(retrier_decl, "time"):
        return None
    if not isinstance(retrier_decl.time, _ScaledTime):
        retrier_decl.time = _ScaledTime(retrier_decl.time, scale)
    return "sfn-retry-scale(%g)" % scale


def _epoch_millis(value):
    """Dates in a translated response become epoch milliseconds, as on AWS."""
    import datetime

    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _epoch_millis(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_epoch_millis(v) for v in value]
    return value


def patch_nested(sfn_task):
    cls = getattr(sfn_task, "StateTaskServiceSfn", None)
    base = getattr(sys.modules.get(_SFN_SERVICE + "state_task_service"), "StateTaskService", None)
    if cls is None or base is None or getattr(cls, "_sdsops_nested", False):
        return None
    if "_to_boto_request(" in _source(base._normalise_parameters):
        return None  # this moto translates names itself
    import botocore.session

    model = botocore.session.get_session().get_service_model("stepfunctions")

    def operation(self, action):
        name = "".join(p.capitalize() for p in self._get_boto_service_action(action).split("_"))
        return model.operation_model(name)

    normalise_parameters = cls._normalise_parameters
    normalise_response = cls._normalise_response

    def _normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        normalise_parameters(self, parameters, boto_service_name, service_action_name)
        self._to_boto_request(parameters, operation(self, service_action_name).input_shape)

    def _normalise_response(self, response, boto_service_name=None, service_action_name=None):
        normalise_response(self, response, boto_service_name, service_action_name)
        if not isinstance(response, dict):
            return
        self._from_boto_response(response, operation(self, service_action_name).output_shape)
        response.update(_epoch_millis(response))

    cls._normalise_parameters = _normalise_parameters
    cls._normalise_response = _normalise_response
    cls._sdsops_nested = True
    return "sfn-nested"


def patch_sync_poll(callback, scale):
    delay = getattr(callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", None)
    if not isinstance(delay, (int, float)):
        return None
    callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = max(delay * scale, 0.05)
    return "sfn-sync-poll-scale(%g)" % scale


_UPLOAD_ID = re.compile(r"<UploadId>([^<]+)</UploadId>")


def patch_multipart_lock(responses):
    cls = getattr(responses, "S3Response", None)
    post = getattr(cls, "_key_response_post", None)
    if post is None or getattr(post, "_sdsops_lock", False):
        return None
    if "object-lock" in _source(post):
        return None  # this moto locks multipart uploads itself
    models = importlib.import_module("moto.s3.models")
    exceptions = importlib.import_module("moto.s3.exceptions")
    backend = models.S3Backend
    complete = backend.complete_multipart_upload
    locks = {}  # upload id -> (mode, retain-until date)

    def _key_response_post(self, request, body, bucket_name, query, key_name):
        mode = request.headers.get("x-amz-object-lock-mode")
        until = request.headers.get("x-amz-object-lock-retain-until-date")
        starts = "uploads" in query and (mode or until)
        if starts and not self.backend.get_bucket(bucket_name).object_lock_enabled:
            raise exceptions.LockNotEnabled()
        res = post(self, request, body, bucket_name, query, key_name)
        if starts:
            text = res[2].decode() if isinstance(res[2], bytes) else str(res[2])
            found = _UPLOAD_ID.search(text)
            if found:
                locks[found.group(1)] = (mode, until)
        return res

    def complete_multipart_upload(self, bucket_name, multipart_id, body):
        key = complete(self, bucket_name, multipart_id, body)
        if key is not None and multipart_id in locks:
            key.lock_mode, key.lock_until = locks.pop(multipart_id)
        return key

    _key_response_post._sdsops_lock = True
    cls._key_response_post = _key_response_post
    backend.complete_multipart_upload = complete_multipart_upload
    return "s3-multipart-lock"


_SFN = "moto.stepfunctions.parser."
_SFN_SERVICE = _SFN + "asl.component.state.exec.state_task.service."


def patches(scale):
    """Module name -> functions patching that module right after it is executed."""
    table = {
        _SFN + "models": [patch_deepcopy, patch_execution_name],
        _SFN_SERVICE + "state_task_service_sfn": [patch_nested],
        "moto.s3.responses": [patch_multipart_lock],
    }
    if scale != 1.0:
        table[_SFN + "asl.component.state.wait.wait_function.wait_function"] = [
            lambda m: patch_wait(m, scale)
        ]
        table[_SFN + "asl.component.common.retry.retrier_decl"] = [
            lambda m: patch_retry(m, scale)
        ]
        table[_SFN_SERVICE + "state_task_service_callback"] = [
            lambda m: patch_sync_poll(m, scale)
        ]
    return table


def _apply(name, module, fns):
    for fn in fns:
        try:
            label = fn(module)
        except Exception as err:  # a moto without the patched code still starts
            log("patch for %s skipped: %r" % (name, err))
            continue
        if label:
            log("applied " + label)
        else:
            log("%s: defect absent, %s not needed" % (name, getattr(fn, "__name__", "patch")))


class _PatchLoader(importlib.abc.Loader):
    def __init__(self, loader, name, fns):
        self._loader = loader
        self._name = name
        self._fns = fns

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _apply(self._name, module, self._fns)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _PatchFinder(importlib.abc.MetaPathFinder):
    """Patches modules as moto imports them.

    moto loads Step Functions on its first Step Functions request; importing it here
    up front would add about two seconds to every start.
    """

    def __init__(self, table):
        self._table = table

    def find_spec(self, name, path, target=None):
        fns = self._table.pop(name, None)
        if fns is None:
            return None
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchLoader(spec.loader, name, fns)
        return spec


def version_problem(version):
    """Returns why this moto version cannot be patched, or "" when it can."""
    parts = []
    for piece in version.split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    low, high = MOTO_VERSIONS
    if len(parts) == 3 and low <= tuple(parts) < high:
        return ""
    return (
        "moto %s is not supported: the Step Functions patches are for moto >= %s, < %s; "
        'install the pinned one: pip install -r requirements-dev.txt'
        % (version or "of unknown version", ".".join(map(str, low)), ".".join(map(str, high)))
    )


def main(argv):
    try:
        import moto
        import moto.server
    except ImportError as err:
        print(
            'moto_launcher: moto is not installed for %s (%s): pip install -r requirements-dev.txt'
            % (sys.executable, err),
            file=sys.stderr,
            flush=True,
        )
        return EXIT_MOTO_MISSING

    problem = version_problem(getattr(moto, "__version__", ""))
    if problem:
        print("moto_launcher: " + problem, file=sys.stderr, flush=True)
        return EXIT_MOTO_VERSION

    scale = wait_scale()
    table = patches(scale)
    for name in list(table):
        if name in sys.modules:
            _apply(name, sys.modules[name], table.pop(name))
    sys.meta_path.insert(0, _PatchFinder(table))
    log(
        "moto %s; patches armed: sfn-deepcopy, sfn-execution-name, sfn-nested, s3-multipart-lock%s"
        % (
            getattr(moto, "__version__", "?"),
            "" if scale == 1.0 else ", sfn-wait-scale(%g)" % scale,
        )
    )
    moto.server.main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
