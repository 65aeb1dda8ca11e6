"""The package lists: `make run` installs only what the application needs, every version pinned.

requirements.txt / requirements-dev.txt hold the direct pins people edit; requirements.lock /
requirements-dev.lock are generated from them (`make lock`) and pin everything they pull in.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
TEST_TOOLS = {"pytest", "pytest-cov", "hypothesis", "playwright", "ruff", "coverage"}


def direct(name: str) -> list[Requirement]:
    lines = (ROOT / name).read_text().splitlines()
    return [Requirement(line) for line in (ln.split("#")[0].strip() for ln in lines) if line and line[0] != "-"]


def locked(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def test_every_direct_pin_is_in_its_lock_file_with_the_same_version():
    for req_file, lock_file in (
        ("requirements.txt", "requirements.lock"),
        ("requirements-dev.txt", "requirements-dev.lock"),
    ):
        pins = locked(lock_file)
        for req in direct(req_file):
            (spec,) = req.specifier
            assert spec.operator == "==", f"{req_file}: {req} is not pinned with =="
            assert pins.get(canonicalize_name(req.name)) == spec.version, (
                f"{req} is not in {lock_file} with that version: run `make lock`"
            )


def test_the_runtime_lock_holds_no_test_bench_or_lint_tool():
    assert not TEST_TOOLS & set(locked("requirements.lock"))
    assert not TEST_TOOLS & {canonicalize_name(r.name) for r in direct("requirements.txt")}


def test_the_two_locks_agree_on_every_package_they_share():
    run, dev = locked("requirements.lock"), locked("requirements-dev.lock")
    assert {n: v for n, v in dev.items() if n in run and run[n] != v} == {}


def test_every_package_the_application_pulls_in_is_pinned_at_the_installed_version():
    """Walk the installed dependency graph from requirements.txt: each package on it is in the lock."""
    pins = locked("requirements.lock")
    seen: dict[str, str] = {}
    todo = [(r, set(r.extras)) for r in direct("requirements.txt")]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen[name] = metadata.version(name)
        for dep in map(Requirement, metadata.requires(name) or []):
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if dep.marker is None or any(dep.marker.evaluate(env) for env in envs):
                todo.append((dep, set(dep.extras)))
    wrong = {n: (v, pins.get(n)) for n, v in seen.items() if pins.get(n) != v}
    assert wrong == {}, "installed vs locked (run `make lock`, then reinstall): " + repr(wrong)
