"""CLI runs in forked children of one warm interpreter.

`python cli.py ...` in a fresh process spends most of a bad-input case's time
importing TensorFlow and Keras. `CLIForks` starts one interpreter that
imports the CLI, Keras and the package once (and runs no backend operation),
then forks a child per call: the child changes into the case's directory,
takes the case's resource limits, writes its stdout and stderr to files and
runs `keras_pixelcnn.cli.main` to its exit code, as `python cli.py` would.
Each child is a separate process (a fresh copy of the warm one), so exit
codes, signals, written files and resource limits behave as with
`subprocess.run`.

Not for options that must act before Keras is imported (`--backend`): run
those through `python cli.py` itself.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]

SERVER = r"""
import json, os, resource, signal, sys, time, traceback
protocol = os.fdopen(os.dup(1), "w")  # the answers; anything else printed goes to stderr
os.dup2(2, 1)
sys.path.insert(0, {root!r})
from keras_pixelcnn.cli import main
import keras  # noqa: the backend, imported once here
import keras_pixelcnn.evaluation.nll, keras_pixelcnn.atomic, keras_pixelcnn.sampling  # noqa
import keras_pixelcnn.training.trainer  # noqa
print("ready", file=protocol, flush=True)
for line in sys.stdin:
    call = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(call["cwd"])
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            for fd, path in ((1, call["stdout"]), (2, call["stderr"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
            if call["fsize"]:  # a disk that fills up after a few KiB
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (call["fsize"], call["fsize"]))
            os.environ.update(call["env"])
            if call["setup"]:
                exec(call["setup"], {{"__name__": "__setup__"}})
            code = main(call["argv"], prog_name="cli.py")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + call["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    print(json.dumps(os.waitstatus_to_exitcode(status)), file=protocol, flush=True)
"""


class CLIForks:
    """One warm interpreter; `run(argv, cwd)` returns what `subprocess.run`
    with `capture_output=True, text=True` would (`returncode`, `stdout`,
    `stderr`). One call at a time per instance."""

    def __init__(self, env):
        self._files = tempfile.TemporaryDirectory()
        self._log = open(os.path.join(self._files.name, "server.log"), "w+")
        self._process = subprocess.Popen(
            [sys.executable, "-c", SERVER.format(root=str(ROOT))],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        if self._process.stdout.readline().strip() != "ready":
            self._log.seek(0)
            raise RuntimeError(f"the CLI fork server did not start:\n{self._log.read()[-3000:]}")

    def run(self, argv, cwd=ROOT, fsize=None, env=None, setup=None, timeout=300):
        """`setup`: Python code the child runs before the CLI (with `env`
        added to its environment), e.g. to patch in a kill at a chosen step."""
        out = os.path.join(self._files.name, "stdout")
        err = os.path.join(self._files.name, "stderr")
        call = dict(
            argv=[str(a) for a in argv],
            cwd=str(cwd),
            stdout=out,
            stderr=err,
            fsize=fsize,
            env=env or {},
            setup=setup,
            timeout=timeout,
        )
        self._process.stdin.write(json.dumps(call) + "\n")
        self._process.stdin.flush()
        returncode = json.loads(self._process.stdout.readline())
        with open(out) as f_out, open(err) as f_err:
            return SimpleNamespace(returncode=returncode, stdout=f_out.read(), stderr=f_err.read())

    def close(self):
        self._process.stdin.close()
        self._process.wait(timeout=60)
        self._log.close()
        self._files.cleanup()
