"""The test runner's plan covers the whole suite, and its verdict fails on
any failed shard."""

import pytest
import run_backends  # tests/ is on the path, as for helpers
from helpers import ROOT

pytestmark = pytest.mark.backend_independent  # see conftest.py


def test_the_two_shards_are_the_whole_suite():
    (first, second) = [args for _, backend, args in run_backends.plan(["tensorflow"], [])]
    assert [a for a in second if not a.startswith("--ignore")] == ["tests"]
    ignored = {a.split("=", 1)[1] for a in second if a.startswith("--ignore=")}
    assert ignored == set(first) == set(run_backends.SHARD_1)
    for path in first:  # a renamed file would silently fall out of the first shard
        assert (ROOT / path).is_file(), path


def test_jax_and_torch_run_the_backend_tests_and_named_tests_run_unsharded():
    jobs = run_backends.plan(["tensorflow", "jax", "torch"], ["-x"])
    labels = [label for label, _, _ in jobs]
    assert labels == ["tensorflow 1/2", "tensorflow 2/2", "jax", "torch"]
    jax, torch = jobs[2][2], jobs[3][2]
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
    assert [label for label, _, _ in full] == ["jax 1/2", "jax 2/2"]
    named = run_backends.plan(["tensorflow", "torch"], ["tests/test_lint.py", "-q"])
    assert named == [
        ("tensorflow", "tensorflow", ["tests/test_lint.py", "-q"]),
        ("torch", "torch", ["tests/test_lint.py", "-q"]),
    ]


@pytest.mark.parametrize(
    "codes, ok",
    [
        ({"tensorflow 1/2": 0, "tensorflow 2/2": 0, "torch": 0}, True),
        ({"tensorflow 1/2": 5, "tensorflow 2/2": 0}, True),  # a -k filter emptied one shard
        ({"tensorflow 1/2": 0, "tensorflow 2/2": 1}, False),  # a failure in one shard
        ({"tensorflow 1/2": 5, "tensorflow 2/2": 5}, False),  # nothing ran at all
        ({"tensorflow 1/2": 0, "tensorflow 2/2": 0, "jax 1/2": 2}, False),  # usage error
        ({}, False),
    ],
)
def test_the_verdict(codes, ok):
    assert run_backends.passed({label: (code, 1.0) for label, code in codes.items()}) is ok
