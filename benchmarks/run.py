"""Run the benchmarks and print one JSON line per measurement.

    python -m benchmarks.run               # every area
    python -m benchmarks.run foundation    # one area (a folder under benchmarks/)

Each ``benchmarks/<area>/bench_*.py`` defines ``run(emit)``; ``emit(**fields)`` prints a
JSON line with the area, the benchmark and the fields (times in seconds, ratios as
anchor/plinth so that bigger is better for Plinth).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def discover(areas: list[str]) -> list[str]:
    modules = []
    for folder in sorted(p for p in HERE.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        if areas and folder.name not in areas:
            continue
        for file in sorted(folder.glob("bench_*.py")):
            modules.append(f"benchmarks.{folder.name}.{file.stem}")
    return modules


def main(argv: list[str]) -> int:
    modules = discover(argv)
    if not modules:
        print(f"no benchmarks found for {argv or 'any area'}", file=sys.stderr)
        return 2
    for name in modules:
        module = importlib.import_module(name)

        def emit(_name: str = name, **fields: Any) -> None:
            line = {"benchmark": _name.removeprefix("benchmarks."), "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **fields}
            print(json.dumps(line, default=str), flush=True)

        module.run(emit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
