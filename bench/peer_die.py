"""Bench: the same 入会 file through django-import-export (the peer) and through this project, in
one run, and the speed-up (DESIGN.md §11, issue 13).

    .venv/bin/python bench/peer_die.py [--rows 50000] [--existing 1000000] [--peer-python PY]

The peer is ../shared/peers/die/ (django-import-export 4.4.3, Django 5.2, tuned bulk mode: a dry
run that checks every row, then the import).  Its folder is read-only: it is copied to a scratch
folder first.  It runs in its own virtualenv: --peer-python, or $DIE_PYTHON, or
/tmp/die-venv/bin/python, created with the peer's pinned requirements.txt when missing (its
README's set-up).  Both sides get the same PostgreSQL settings (the CI's: fsync off,
synchronous_commit off, full_page_writes off), a fresh cluster and --existing members.

  1. the peer's gen_data.py writes the .xlsx (姓名, 身份证号; 2 % invalid rows of three kinds,
     ~5 % needing normalisation) — the file both sides read;
  2. the peer: run.py --db postgres --bulk --existing M --file F (load + dry run + import);
  3. this project: bench/batch_members.py --file F --existing M (业务校验 + 业务办理 through the
     CLI's code path, result file included, and its floor).

One JSON line: both totals, `speedup` = peer total_s / our total_s, both JSON lines in full,
and `uptime`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import ROOT, Timer, log  # noqa: E402

# ../shared/peers/die beside the checkout (or beside the folder of a git worktree under it)
PEER = next(
    (
        p / "shared" / "peers" / "die"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared" / "peers" / "die").is_dir()
    ),
    ROOT.parent / "shared" / "peers" / "die",
)
PG_SETTINGS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"


def peer_python(given: str | None) -> str:
    py = given or os.environ.get("DIE_PYTHON") or "/tmp/die-venv/bin/python"
    if Path(py).exists():
        return py
    venv = Path(py).parent.parent
    base = shutil.which("python3.11") or sys.executable
    log(f"creating the peer's virtualenv {venv} ({base}; {PEER / 'requirements.txt'}) …")
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "-r", str(PEER / "requirements.txt")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return py


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--existing", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--peer", default=str(PEER), help="the peer's folder (copied before use)")
    ap.add_argument("--peer-python", help="the peer's virtualenv python (default $DIE_PYTHON or /tmp/die-venv)")
    ap.add_argument("--timeout", type=float, default=900, help="the peer's measurement timeout (s)")
    args = ap.parse_args()

    py = peer_python(args.peer_python)
    with tempfile.TemporaryDirectory(prefix="bench-peer-die.") as tmp:
        tmp = Path(tmp)
        work = tmp / "die"
        shutil.copytree(args.peer, work)
        for p in [work, *work.rglob("*")]:  # the shared copy is read-only; ours is not
            p.chmod(0o755 if p.is_dir() else 0o644)
        data = tmp / f"members_{args.rows}_s{args.seed}.xlsx"
        gen = subprocess.run(
            [py, "gen_data.py", "--rows", str(args.rows), "--seed", str(args.seed), "--out", str(data)],
            cwd=work,
            check=True,
            capture_output=True,
            text=True,
        )
        log(f"the file: {gen.stdout.strip()}")

        log(f"the peer: {args.rows} rows against {args.existing} members (its set-up is not timed) …")
        env = dict(os.environ, DIE_PG_EXTRA_OPTS=PG_SETTINGS)
        with Timer() as peer_wall:
            peer = subprocess.run(
                [
                    py,
                    "run.py",
                    "--rows",
                    str(args.rows),
                    "--db",
                    "postgres",
                    "--bulk",
                    "--existing",
                    str(args.existing),
                    "--seed",
                    str(args.seed),
                    "--file",
                    str(data),
                    "--timeout",
                    str(args.timeout),
                ],
                cwd=work,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
        if peer.returncode != 0:
            raise SystemExit(f"the peer failed (exit {peer.returncode}): {peer.stdout[-500:]}")
        peer_out = last_json(peer.stdout)
        log(f"peer: {peer_out} ({peer_wall.s} s with its set-up)")

        log("this project, on the same file …")
        ours = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "batch_members.py"),
                "--rows",
                str(args.rows),
                "--existing",
                str(args.existing),
                "--file",
                str(data),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        if ours.returncode != 0:
            raise SystemExit(f"batch_members.py failed (exit {ours.returncode})")
        ours_out = last_json(ours.stdout)

    if (ours_out["created"], ours_out["errors"]) != (peer_out["created"], peer_out["errors_reported"]):
        log(
            f"note: counts differ — ours created {ours_out['created']} / errors {ours_out['errors']}, "
            f"the peer {peer_out['created']} / {peer_out['errors_reported']}"
        )
    common.emit(
        {
            "rows": args.rows,
            "existing": args.existing,
            "ours_total_s": ours_out["total_s"],
            "ours_floor_s": ours_out["floor_s"],
            "ours_ratio_to_floor": ours_out["ratio"],
            "peer_total_s": peer_out["total_s"],
            "speedup": round(peer_out["total_s"] / ours_out["total_s"], 1),
            "same_counts": (ours_out["created"], ours_out["errors"])
            == (peer_out["created"], peer_out["errors_reported"]),
            "ours": ours_out,
            "peer": peer_out,
            **common.machine_load(),
        }
    )


if __name__ == "__main__":
    main()
