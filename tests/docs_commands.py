"""The fenced shell and Python blocks of README.md and docs/*.md, and how tests run each command.

A shell command becomes an argv list run in a scratch folder: the harness's commands get a
tiny-data override (only for keys the command does not set itself), a store in that folder, and a
sweep preset shrunk to one config (one trial for the Optuna search); `mlflow ui` is started on a
free loopback port and asked for its experiments. A command this module does not know fails the
test, so a new kind of command in the docs must be taught here, or listed in SKIP with a reason.
"""

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL, PYTHON = ("bash", "sh", "console", "shell"), ("python", "py")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)

# commands that need what a test machine does not have: (a substring of the command, why)
SKIP = [
    ("postgresql://", "needs PostgreSQL and SLURM: tests/test_engines_readme.py runs the README's (-m engines)"),
    ("hydra/launcher=slurm", "needs a SLURM cluster"),
]
TINY = {"data.train_size": "500", "data.val_size": "100", "data.test_size": "200", "train.epochs": "1",
        "train.warmup_steps": "0", "train.verbose": "false"}
BENCH_TINY = ["--configs", "1x16x32", "--threads", "1", "--repeats", "1", "--steps", "4"]
MAKE_TEST_ARGS = "tests/test_activations.py -q -p no:cacheprovider"


@dataclass
class Block:
    doc: Path
    line: int
    lang: str
    text: str


@dataclass
class Command:
    """One command of a block, as written (`text`) and as the test runs it (`argv`)."""
    block: Block
    text: str
    kind: str = ""  # make, train, report, bench, python, ui, export, skip
    argv: list = field(default_factory=list)
    why: str = ""  # for kind == "skip"

    def where(self):
        return f"{self.block.doc.relative_to(ROOT)}:{self.block.line}: {self.text}"


def blocks(doc):
    """The fenced shell and Python blocks of one Markdown file, in order."""
    text = doc.read_text()
    for match in FENCE.finditer(text):
        lang = match.group(1).lower()
        if lang in SHELL + PYTHON:
            yield Block(doc, text[:match.start()].count("\n") + 1, "python" if lang in PYTHON else "shell",
                        match.group(2))


def shell_lines(block):
    """The block's commands: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block.text)
    for line in joined.splitlines():
        line = line.strip().removeprefix("$ ")
        if line and not line.startswith("#"):
            yield line


def keys_of(args):
    """The config keys a command's overrides set (`+sweep=grid` sets `sweep`)."""
    return {a.split("=", 1)[0].lstrip("+~") for a in args if "=" in a and not a.startswith("-")}


def is_python(program):
    return Path(program).name in ("python", "python3")


def tiny_train(args, store):
    """experiments.train's arguments, plus a store and tiny data for every key they leave unset."""
    keys = keys_of(args)
    extra = [f"{k}={v}" for k, v in TINY.items() if k not in keys]
    sweeping = any(a in ("-m", "--multirun") for a in args)
    if not keys & {"frameworks", "keras", "parity"}:
        extra.append("frameworks=[scratchnn]")  # TensorFlow is imported only by the commands that ask for Keras
    if "mlflow.tracking_uri" not in keys:
        extra.append(f"mlflow.tracking_uri={store}")
    preset = next((a.split("=", 1)[1] for a in args if a.lstrip("+").startswith("sweep=")), None)
    if preset and sweeping:
        sweep = OmegaConf.load(ROOT / "conf" / "sweep" / f"{preset}.yaml")
        optuna = any("optuna" in str(d) for d in sweep.get("defaults", []))
        if optuna:
            extra += [] if "hydra.sweeper.n_trials" in keys else ["hydra.sweeper.n_trials=1"]
        else:  # one config of the grid: the first value of every swept key the command does not sweep itself
            extra += [f"{k}={str(v).split(',')[0]}" for k, v in sweep.hydra.sweeper.params.items() if k not in keys]
    return args + extra


def translate(block, line, scratch):
    """The Command for one line of a shell block, run in `scratch` with its store there."""
    command = Command(block, line)
    for needle, why in SKIP:
        if needle in line:
            command.kind, command.why = "skip", why
            return command
    words = shlex.split(line, comments=True)
    store = f"sqlite:///{scratch / 'mlflow.db'}"
    program, rest = words[0], words[1:]
    if program == "export":
        command.kind, command.argv = "export", rest
    elif program == "make" and rest and rest[0] in ("demo", "test"):
        given = next((w.split("=", 1)[1] for w in rest[1:] if w.startswith("ARGS=")), "").split()
        args = tiny_train(given, store) + [f"hydra.run.dir={scratch / 'demo'}"] if rest[0] == "demo" else (
            given or MAKE_TEST_ARGS.split())
        command.kind, command.argv = "make", ["make", "-s", rest[0], f"ARGS={shlex.join(args)}"]
    elif is_python(program) and rest[:2] == ["-m", "experiments.train"]:
        command.kind, command.argv = "train", [sys.executable, "-m", "experiments.train", *tiny_train(rest[2:], store)]
    elif is_python(program) and rest[:2] == ["-m", "compare.report"]:
        args = rest[2:] + ([] if "--tracking-uri" in rest else ["--tracking-uri", store])
        args += [] if "--out" in rest else ["--out", str(scratch / "reports" / rest[rest.index("--experiment") + 1])]
        command.kind, command.argv = "report", [sys.executable, "-m", "compare.report", *args]
    elif is_python(program) and rest[:2] == ["-m", "benchmarks.bench"]:
        frameworks = [] if "--keras-settings" in rest else ["--frameworks", "scratchnn,gemm"]
        command.kind = "bench"
        command.argv = [sys.executable, "-m", "benchmarks.bench", *rest[2:], *BENCH_TINY, *frameworks,
                        "--out", str(scratch / "bench")]
    elif is_python(program) and rest[:2] == ["-m", "benchmarks.fd_vs_backprop"]:
        command.kind, command.argv = "bench", [sys.executable, *rest, "--hidden", "4", "--batch", "4"]
    elif is_python(program) and rest[:1] == ["-c"]:
        command.kind, command.argv = "python", [sys.executable, *rest]
    elif Path(program).name == "mlflow" and rest[:1] == ["ui"]:
        command.kind, command.argv = "ui", [sys.executable, "-m", "mlflow", *rest]
    return command


def commands(doc, scratch):
    """Every command of `doc`'s blocks, in order; a Python block is one command."""
    for block in blocks(doc):
        if block.lang == "python":
            yield Command(block, block.text.strip().splitlines()[0] + " ...", "python-block")
        else:
            for line in shell_lines(block):
                yield translate(block, line, scratch)
