"""What a run captures about where it ran: source, git, Python, packages, host and user.

Cheap by design: git's commit and branch are read from the ``.git`` folder's files (no
subprocess); only a dirty working tree's diff asks ``git`` once. The package list comes
from ``importlib.metadata`` once per process.
"""

from __future__ import annotations

import functools
import getpass
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

MAX_DIFF_BYTES = 5 * 1024 * 1024
MAX_COMMAND = 4000


@dataclass
class Environment:
    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # artifact name -> content


@functools.lru_cache(maxsize=1)
def installed_packages() -> str:
    """``name==version`` lines of every installed distribution: a lock of the environment."""
    from importlib.metadata import distributions

    seen: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata.get("Name")
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return "".join(line + "\n" for _, line in sorted(seen.items()))


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = candidate.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                target = Path(text.removeprefix("gitdir:").strip())
                return target if target.is_absolute() else (folder / target).resolve()
    return None


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    for base in (git_dir, _common_dir(git_dir)):
        path = base / ref
        if path.is_file():
            return path.read_text().strip() or None
        packed = base / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(errors="replace").splitlines():
                sha, _, name = line.partition(" ")
                if name == ref:
                    return sha
    return None


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"
    if common.is_file():
        return (git_dir / common.read_text().strip()).resolve()
    return git_dir


def git_info(start: Path) -> tuple[dict[str, str], bytes | None]:
    """Tags for commit, branch and dirtiness, and the dirty diff (``git diff HEAD``)."""
    git_dir = _git_dir(start.resolve())
    if git_dir is None:
        return {}, None
    tags: dict[str, str] = {}
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError:
        return {}, None
    if head.startswith("ref:"):
        ref = head.removeprefix("ref:").strip()
        tags["plinth.git.branch"] = ref.removeprefix("refs/heads/")
        commit = _resolve_ref(git_dir, ref)
    else:
        commit = head
    if commit:
        tags["plinth.git.commit"] = commit
    diff = None
    work_tree = git_dir.parent if git_dir.name == ".git" else None
    if commit and work_tree is not None and shutil.which("git"):
        try:
            out = subprocess.run(
                ["git", "-C", str(work_tree), "diff", "HEAD", "--no-color", "--no-ext-diff"],
                capture_output=True,
                timeout=10,
                check=False,
            )
            if out.returncode == 0:
                tags["plinth.git.dirty"] = "true" if out.stdout else "false"
                if out.stdout:
                    diff = out.stdout[:MAX_DIFF_BYTES]
                    if len(out.stdout) > MAX_DIFF_BYTES:
                        tags["plinth.git.diff_truncated"] = "true"
        except (OSError, subprocess.SubprocessError):
            pass
    return tags, diff


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def capture(packages: bool = True) -> Environment:
    """Everything a run records at its start about the process that runs it."""
    env = Environment()
    argv = list(sys.argv)
    entry = argv[0] if argv and argv[0] else "<interactive>"
    env.tags["plinth.source.entry_point"] = entry if entry in {"-c", "<interactive>"} else os.path.basename(entry)
    env.tags["plinth.source.command"] = shlex.join([sys.executable.rsplit("/", 1)[-1], *argv])[:MAX_COMMAND]
    env.tags["plinth.source.cwd"] = os.getcwd()[:1000]
    env.tags["plinth.python.version"] = platform.python_version()
    env.tags["plinth.python.implementation"] = platform.python_implementation()
    env.tags["plinth.python.executable"] = sys.executable[:1000]
    uname = platform.uname()
    env.tags["plinth.host"] = socket.gethostname()[:250]
    env.tags["plinth.os"] = f"{uname.system} {uname.release} {uname.machine}"
    user = _user()
    if user:
        env.tags["plinth.user"] = user[:250]
    script_dir = Path(entry).resolve().parent if os.path.isfile(entry) else Path.cwd()
    git_tags, diff = git_info(script_dir)
    env.tags.update(git_tags)
    if diff:
        env.files["environment/git.diff"] = diff
    if packages:
        env.files["environment/requirements.txt"] = installed_packages().encode()
    return env
