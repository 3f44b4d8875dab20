"""Do the dependency floors of pyproject.toml build the atlas? Install them and build the sample.

Creates a fresh virtual environment (no system site packages), installs this checkout into it with
transformers, timm, mkdocs and mkdocs-material pinned to the lowest versions pyproject.toml admits,
beside the torch and torchvision of the running interpreter (pip takes them from its usual sources),
then runs ``atlas build`` on the bundled sample with every default model (offline: random weights) and
checks that every model was built with every default method, nothing was skipped and the site was built:

  .venv/bin/python bench/floors.py                                   # writes bench/results/<date>-floors.json
  .venv/bin/python bench/floors.py --pin transformers==5.3.0 --json /tmp/t53.json   # another version of one package

Needs the package registry (the floors are downloaded); takes the time of a first install plus a sample
build. Exit code 0 when the floors build everything, 1 when they do not (the result file says why).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORED = ("transformers", "timm", "mkdocs", "mkdocs-material")  # pinned to their floors
SHOWN = (*FLOORED, "torch", "torchvision", "huggingface-hub", "tokenizers", "numpy", "typer", "rich")


def floors(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """``{package: lowest admitted version}`` of the ``FLOORED`` packages, from ``pkg>=X`` dependencies."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    found = {}
    for requirement in tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]:
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)", requirement)
        if match and match[1].lower() in FLOORED:
            found[match[1].lower()] = match[2]
    missing = set(FLOORED) - set(found)
    if missing:
        raise SystemExit(f"pyproject.toml: no >= floor for {', '.join(sorted(missing))}")
    return found


def _run(command: list[str], log: Path, **kwargs) -> tuple[int, float]:
    """Run ``command``, appending its output to ``log``; (exit code, seconds)."""
    started = time.perf_counter()
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, **kwargs).returncode
    return code, time.perf_counter() - started


def install(venv: Path, pins: dict[str, str], log: Path, overrides: dict[str, str] | None = None) -> tuple[int, float]:
    """A fresh venv with this checkout and ``pins`` (plus the running torch and torchvision), then the
    ``overrides`` installed over them (versions pyproject.toml may refuse: pip says so and goes on)."""
    code, seconds = _run([sys.executable, "-m", "venv", "--clear", str(venv)], log)
    if code:
        return code, seconds
    constraints = venv / "floors-constraints.txt"
    local = {name: version(name) for name in ("torch", "torchvision")}
    constraints.write_text("".join(f"{name}=={v}\n" for name, v in {**local, **pins}.items()))
    code, more = _run([str(venv / "bin" / "pip"), "install", "--no-cache-dir", "-c", str(constraints), "-e",
                       str(ROOT)], log)
    seconds += more
    if not code and overrides:
        code, more = _run([str(venv / "bin" / "pip"), "install", "--no-cache-dir",
                           *(f"{name}=={v}" for name, v in overrides.items())], log)
        seconds += more
    return code, seconds


def installed(venv: Path) -> dict[str, str]:
    """The versions of the ``SHOWN`` packages in ``venv``."""
    names = json.dumps(list(SHOWN))
    code = (f"import json; from importlib.metadata import version, PackageNotFoundError\n"
            f"def v(n):\n    try: return version(n)\n    except PackageNotFoundError: return None\n"
            f"print(json.dumps({{n: v(n) for n in {names}}}))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def check_build(out: Path, build_log: str) -> list[str]:
    """What is wrong with the sample build in ``out`` (empty when every default model built in full)."""
    sys.path.insert(0, str(ROOT))
    from ssl_attention.models import DEFAULT_MODELS
    from ssl_attention.models.specs import default_methods

    problems = []
    try:
        manifest = json.loads((out / "maps" / "manifest.json").read_text())
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError) as exc:
        return [f"no manifest or report: {exc}"]
    built = {m["name"]: m for m in manifest["models"]}
    for name in DEFAULT_MODELS:
        if name not in built:
            problems.append(f"model {name} was not built")
        elif set(built[name]["methods"]) != set(default_methods(name)):
            problems.append(f"model {name}: methods {built[name]['methods']}, expected {default_methods(name)}")
        elif len(built[name]["maps"]) != len(manifest["images"]):
            problems.append(f"model {name}: maps of {len(built[name]['maps'])} images")
    problems += [f"skipped: {line}" for line in report["skipped"]]
    if "encoder layers" in build_log:
        problems.append("the build log mentions missing encoder layers")
    if not (out / "site" / "index.html").is_file():
        problems.append("no site/index.html")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pin", action="append", default=[], metavar="PKG==VERSION",
                        help="Install this version instead of the floor (repeat for several).")
    parser.add_argument("--workdir", type=Path, help="Where the venv and the build go (default: a temp dir).")
    parser.add_argument("--json", type=Path, help="Result file (default: bench/results/<date>-floors.json).")
    args = parser.parse_args(argv)
    pins = floors()
    overrides = {}
    for pin in args.pin:
        name, _, wanted = pin.partition("==")
        overrides[name.lower()] = wanted
    work = args.workdir or Path(tempfile.mkdtemp(prefix="atlas-floors-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "floors.log"
    result: dict = {"date": date.today().isoformat(), "python": sys.version.split()[0],
                    "pins": {**pins, **overrides},
                    "command": "python bench/floors.py " + " ".join(sys.argv[1:] if argv is None else argv),
                    "log": str(log)}
    code, result["install_seconds"] = install(work / "venv", pins, log, overrides)
    problems = [f"pip install failed (exit {code}; see {log})"] if code else []
    if not code:
        result["installed"] = installed(work / "venv")
        out = work / "build"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_MKDOCS_2_WARNING": "1"}
        code, result["build_seconds"] = _run([str(work / "venv" / "bin" / "atlas"), "build", "--out", str(out)],
                                             log, env=env, cwd=work)
        text = log.read_text(encoding="utf-8")
        problems = ([f"atlas build failed (exit {code})"] if code else []) + check_build(out, text)
        result["built_models"] = sorted(
            m["name"] for m in json.loads((out / "maps" / "manifest.json").read_text())["models"]
        ) if (out / "maps" / "manifest.json").is_file() else []
    result["problems"], result["ok"] = problems, not problems
    target = args.json or ROOT / "bench" / "results" / f"{result['date']}-floors.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
