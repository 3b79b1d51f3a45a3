"""The test runner's plan covers the whole suite, and its verdict fails on
any failed shard."""

import pytest
import run_backends  # tests/ is on the path, as for helpers
from helpers import ROOT

pytestmark = pytest.mark.backend_independent  # see conftest.py


def test_the_three_shards_are_the_whole_suite():
    jobs = run_backends.plan(["tensorflow"], [])
    assert [label for label, _, _ in jobs] == ["tensorflow 1/3", "tensorflow 2/3", "tensorflow 3/3"]
    first, rest, third = [args for _, _, args in jobs]
    assert run_backends.SHARDS == [first, run_backends.REST, third]  # in their start order
    assert [a for a in rest if not a.startswith("--ignore")] == ["tests"]
    ignored = [a.split("=", 1)[1] for a in rest if a.startswith("--ignore=")]
    files = first + third
    assert sorted(ignored) == sorted(files) and len(set(files)) == len(files)  # no file twice
    for path in files:  # a renamed file would silently fall out of its shard
        assert (ROOT / path).is_file(), path


def test_each_job_gets_its_share_of_the_cores(monkeypatch):
    """Bug: every job's OpenMP (torch) and XLA (JAX) pools took all the
    cores, and two jobs at once oversubscribed them."""
    monkeypatch.setattr(
        run_backends.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False
    )
    assert run_backends.core_shares(2) == [{0, 2}, {1, 3}]
    assert run_backends.core_shares(1) == [{0, 1, 2, 3}]
    assert run_backends.core_shares(8) == [{0, 1, 2, 3}] * 8  # fewer cores than jobs: share all
    env, pin = run_backends.job_env("torch", {1, 3})
    assert (env["OMP_NUM_THREADS"], env["KERAS_BACKEND"], pin) == ("2", "torch", None)
    env, pin = run_backends.job_env("jax", {1})
    assert (env["OMP_NUM_THREADS"], pin) == ("1", {1})


def test_jax_and_torch_run_the_backend_tests_and_named_tests_run_unsharded():
    jobs = run_backends.plan(["tensorflow", "jax", "torch"], ["-x"])
    labels = [label for label, _, _ in jobs]
    # longest first: JAX (about 600 s), the shards (about 400 s each), torch
    assert labels == ["jax", "tensorflow 1/3", "tensorflow 2/3", "tensorflow 3/3", "torch"]
    jax, torch = jobs[0][2], jobs[4][2]
    assert [a for a in jax if not a.startswith("--deselect=")] == [
        *run_backends.BACKEND_TESTS,
        "-x",
    ]
    assert [a for a in torch if not a.startswith("--deselect=")] == [
        *run_backends.BACKEND_TESTS,
        "-x",
    ]
    left_out = {b: {a[11:] for a in args if a.startswith("--deselect=")} for b, args in
                (("jax", jax), ("torch", torch))}  # fmt: skip
    cases = run_backends.LEFT_OUT
    assert left_out["jax"] == set(cases["jax torch"])
    assert left_out["torch"] == set(cases["jax torch"]) | set(cases["torch"])
    for entry in [*run_backends.BACKEND_TESTS, *left_out["torch"]]:
        # a renamed file or test would silently drop out (or back in)
        path, _, name = entry.partition("::")
        assert (ROOT / path).is_file(), path
        assert not name or f"def {name.split('[')[0]}(" in (ROOT / path).read_text(), entry
    full = run_backends.plan(["jax"], [], full=True)
    assert [label for label, _, _ in full] == ["jax 1/3", "jax 2/3", "jax 3/3"]
    named = run_backends.plan(["tensorflow", "torch"], ["tests/test_lint.py", "-q"])
    assert named == [
        ("tensorflow", "tensorflow", ["tests/test_lint.py", "-q"]),
        ("torch", "torch", ["tests/test_lint.py", "-q"]),
    ]


@pytest.mark.parametrize(
    "codes, ok",
    [
        ({"tensorflow 1/3": 0, "tensorflow 2/3": 0, "tensorflow 3/3": 0, "torch": 0}, True),
        ({"tensorflow 1/3": 5, "tensorflow 2/3": 0}, True),  # a -k filter emptied one shard
        ({"tensorflow 1/3": 0, "tensorflow 2/3": 0, "tensorflow 3/3": 1}, False),  # one failed
        ({"tensorflow 1/3": 5, "tensorflow 2/3": 5}, False),  # nothing ran at all
        ({"tensorflow 1/3": 0, "tensorflow 2/3": 0, "jax 1/3": 2}, False),  # usage error
        ({}, False),
    ],
)
def test_the_verdict(codes, ok):
    assert run_backends.passed({label: (code, 1.0) for label, code in codes.items()}) is ok
