"""What a user sees when something is wrong: one line, the right exit status, no traceback.

Every task is run with bad input as ./run would run it (cli/program.py's main, in
this process for speed; a few through ./run itself).  None of these boots a guest:
each error is found before the boot (an unknown CPU model only when QEMU refuses it).
"""

from __future__ import annotations

import ast
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import tasks
from cli import arguments
from cli.errors import FAILURE, USAGE, UsageError
from cli.program import main, normalize
from stores.db import connect

REPO = Path(__file__).resolve().parents[1]
ROUTINES = "sem/library/hackers_delight.py"


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ended:
        main(["./run", *argv])
    out, err = capsys.readouterr()
    return ended.value.code, out, err


def run_script(*argv: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "run"), *argv], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=120, cwd=REPO)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Paths a user might give: missing, a directory, a corrupt database, DSL files."""
    root = tmp_path_factory.mktemp("bad")
    corrupt = root / "corrupt.db"
    corrupt.write_bytes(b"this is not an SQLite database, whatever its name says" * 20)
    (root / "syntax.py").write_text("from sem.ir import routine\ndef broken(:\n")
    (root / "empty.py").write_text("X = 1\n")
    connect(root / "empty.db").close()  # a database with nothing stored in it
    (root / "no_id.json").write_text('{"schema": "metaos.workload/1", "tasks": '
                                     '[{"routine": "hd:p01", "size": 3}]}')
    return {"missing": str(root / "missing.file"), "dir": str(root), "corrupt": str(corrupt),
            "empty_db": str(root / "empty.db"), "syntax": str(root / "syntax.py"),
            "no_routines": str(root / "empty.py"), "market_db": str(root / "market.db"),
            "nowhere": str(root / "nowhere" / "out.json"),
            "no_id_workload": str(root / "no_id.json")}


# (argv with {placeholders} from `files`, exit status, what the line must name)
BAD_INPUT = [
    # board options, on every task that boots
    ("discover --arch sparc", USAGE, "'sparc'"),
    ("discover --board zz", USAGE, "'zz'"),
    ("discover --board virt", USAGE, "pass --arch riscv64"),
    ("discover --smp 0", USAGE, "--smp"),
    ("discover --smp abc", USAGE, "--smp"),
    ("discover --memory -5", USAGE, "--memory"),
    ("discover --accel warp", USAGE, "'warp'"),
    ("discover --json {dir}", USAGE, "--json"),
    ("discover --json {nowhere}", USAGE, "no directory"),
    ("discover --json ''", USAGE, "--json takes a file name, not ''"),
    ("discover --dump-dir ''", USAGE, "--dump-dir takes a directory, not ''"),
    ("discover --board ''", USAGE, "--board takes a name, not ''"),
    ("discover --cpu ''", USAGE, "--cpu takes a name, not ''"),
    ("discover --dump-dir {corrupt}", USAGE, "not a directory"),
    ("boot --arch sparc", USAGE, "'sparc'"),
    ("boot --smp 0", USAGE, "--smp"),
    ("console --board nosuch", USAGE, "'nosuch'"),
    ("console --replay {missing}", USAGE, "missing.file"),
    ("console --replay {dir}", USAGE, "directory"),
    ("build --arch sparc", USAGE, "'sparc'"),
    ("demo --nosuch", USAGE, "--nosuch"),
    # probing
    ("probe --family nosuch", USAGE, "'nosuch'"),
    ("probe --family cpuid --arch riscv64", USAGE, "runs on x86_64, not riscv64"),
    ("probe --family random --limit -5", USAGE, "--limit"),
    ("probe --family random --limit abc", USAGE, "--limit"),
    ("probe --family random --budget 0", USAGE, "--budget"),
    ("probe --family random --smp 0", USAGE, "--smp"),
    ("probe --family timing", USAGE, "--sequence"),
    ("probe --family timing --sequence bogus", USAGE, "bogus"),
    ("probe --family cpuid --sequence nop", USAGE, "--sequence"),
    ("probe --family csr --arch riscv64 --unsafe-unvetted", USAGE, "--unsafe-unvetted"),
    ("probe --family cpuid --line telepathy", USAGE, "'telepathy'"),
    ("probe --family cpuid --line-faults abc", USAGE, "--line-faults"),
    ("probe --family cpuid --line-faults 2", USAGE, "--line-faults"),
    ("probe --family cpuid --db {corrupt}", FAILURE, "corrupt.db"),
    ("probe", USAGE, "family"),
    ("probe --family cpuid --json {nowhere}", USAGE, "--json"),
    ("capabilities --db {corrupt}", FAILURE, "corrupt.db"),
    ("capabilities --db {dir}", FAILURE, "unable to open database file"),
    # the semantic core
    ("sem add {missing}", USAGE, "missing.file"),
    ("sem add {dir}", USAGE, "no such file"),
    ("sem add {syntax}", USAGE, "syntax.py, line 2"),
    ("sem add {no_routines}", USAGE, "defines no routines"),
    ("sem add {corrupt}", USAGE, "corrupt.db: not a Python file"),
    ("sem show sort3 --db {empty_db}", USAGE, "'sort3'"),
    ("sem show sort3 --db {missing}", USAGE, "no database at"),
    ("sem history p01 --db {missing}", USAGE, "`sem add FILE.py` makes one"),
    ("sem show p24 --view nosuch --db {empty_db}", USAGE, "--view 'nosuch'"),
    ("sem rename p01 '' --db {empty_db}", USAGE, "'' is not a name; write NAMESPACE:NAME"),
    ("sem rename p01 hd: --db {empty_db}", USAGE, "'hd:' is not a name"),
    ("sem show p24 --view asm --arch sparc --db {empty_db}", USAGE, "'sparc'"),
    ("sem show p24 --db {corrupt}", FAILURE, "corrupt.db"),
    ("sem names nosuch --db {empty_db}", USAGE, "'nosuch'"),
    ("sem history nosuch --db {empty_db}", USAGE, "'nosuch'"),
    ("sem rename nosuch:a nosuch:b --db {empty_db}", USAGE, "nosuch:a"),
    ("sem equiv a b --db {empty_db}", USAGE, "'a'"),
    ("sem run nosuch --vectors 0 --db {empty_db}", USAGE, "--vectors"),
    ("sem run nosuch --smp 0 --db {empty_db}", USAGE, "--smp"),
    ("sem run nosuch --cpu qemu64 --db {empty_db}", USAGE, "'nosuch'"),
    ("sem", USAGE, None),  # a group alone lists its tasks: not an error
    # the ledger
    ("ledger show --last abc --db {empty_db}", USAGE, "--last"),
    ("ledger show --db {missing}", USAGE, "missing.file"),
    ("ledger show --db {corrupt}", FAILURE, "corrupt.db"),
    ("ledger prove abc --db {empty_db}", USAGE, "ENTRY"),
    ("ledger consistency 5 x --db {empty_db}", USAGE, "NEW"),
    # the mutation market (every error found before a board boots)
    ("market --boards nope", USAGE, "nope"),
    ("market --boards qemu64, --seconds abc", USAGE, "--seconds"),
    ("market --boards qemu64,rv64,qemu64", USAGE, "board profile qemu64 given twice"),
    ("market --seed x", USAGE, "--seed"),
    ("market --seconds 0", USAGE, "--seconds must be at least 0.1"),
    ("market --seconds ''", USAGE, "--seconds takes a number, not ''"),
    ("evolve --ref p01 --batches ''", USAGE, "--batches takes a whole number, not ''"),
    ("market --routines p01,p99 --db {market_db}", USAGE, "p99"),
    ("market --routines '' --db {market_db}", USAGE, "--routines takes comma-separated names"),
    ("market --db {corrupt}", FAILURE, "corrupt.db"),
    ("market --db {dir}", FAILURE, "unable to open database file"),
    # outputs are refused before the work, which would be lost when written
    ("market --json {nowhere} --db {market_db}", USAGE, "no directory"),
    ("market --plot {dir} --db {market_db}", USAGE, "is a directory"),
    ("evolve --auto --json {nowhere}", USAGE, "--json"),
    ("motherboard --json {nowhere}", USAGE, "no directory"),
    ("motherboard --plot {dir}", USAGE, "--plot"),
    ("motherboard --boards q35:qemu64 --liars 2", USAGE, "only 1 board can start"),
    # a plan or a decline naming no board of the run, or no routine, before a board boots
    ("motherboard --boards q35:qemu64,virt:rv64 --kill foo@1", USAGE,
     "no board 'foo' in this run; its boards are q35:qemu64, virt:rv64"),
    ("motherboard --boards q35:qemu64 --join virt:rv64@2 --leave virt:rv64@3", USAGE,
     "its boards are q35:qemu64, virt:rv64@2s"),
    ("motherboard --boards q35:qemu64 --decline virt:rv64=p01", USAGE, "no board 'virt:rv64'"),
    ("motherboard --boards q35:qemu64 --decline q35:qemu64=p99", USAGE, "routine 'p99'"),
    ("motherboard --timeout 0", USAGE, "--timeout must be at least 1"),
    ("motherboard --boards q35:qemu64,q35:Haswel", USAGE, "has no CPU model 'Haswel'"),
    ("motherboard --boards q35:qemu64 --join virt:rv32@1", USAGE,
     "--join 'virt:rv32@1': board spec 'virt:rv32': qemu-system-riscv64 has no CPU model"),
    ("motherboard --boards q35:qemu64 --join nope@1", USAGE, "--join 'nope@1'"),
    ("motherboard --workload {no_id_workload}", USAGE, "tasks/0: 'id' is a required property"),
    ("bench motherboard --json {nowhere}", USAGE, "--json"),
    ("bench market --seconds abc", USAGE, "--seconds"),
    ("bench evolve --budget 0", USAGE, "--budget must be at least 0.1"),
    ("bench evolve --sort-budget -1", USAGE, "--sort-budget must be at least 0.1"),
    ("bench market --routines sort9", USAGE, "sort9"),
    ("bench market --routines ''", USAGE, "--routines takes comma-separated names"),
    ("bench motherboard --parts ''", USAGE, "--parts takes letters of ABCD"),
    ("bench motherboard --parts AX", USAGE, "--parts 'X'"),
    # benchmarks and the runner itself
    ("bench --runs abc", USAGE, "--runs"),
    ("bench --arch sparc", USAGE, "'sparc'"),
    ("bench ledger --entries -5", USAGE, "--entries"),
    ("nosuchtask", USAGE, "`./run --list`"),
    ("discover --nosuch", USAGE, "discover takes no '--nosuch'"),
    ("discover extra", USAGE, "`./run --help discover`"),
    ("--nosuch", USAGE, "no option '--nosuch'"),
    # a stray word after a group names the group's tasks; after a grouped task, that task
    ("bench nosuch", USAGE, "its tasks are boot, evolve, ledger, market, motherboard"),
    ("bench market --nosuch", USAGE, "`./run --help bench market`"),
    ("sem show a b", USAGE, "sem show takes no 'b'"),
]


@pytest.mark.parametrize("command, status, named", BAD_INPUT, ids=[c for c, _, _ in BAD_INPUT])
def test_bad_input_is_one_line_that_names_it(capsys, files, command, status, named):
    code, out, err = run_main(capsys, *shlex.split(command.format(**files)))
    if named is None:
        assert code == 0 and "Available 'sem' tasks" in out and err == ""
        return
    assert code == status, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and named in err, err


@pytest.mark.qemu
def test_qemus_unknown_cpu_model_is_a_usage_error(capsys):
    code, _, err = run_main(capsys, "discover", "--accel", "tcg", "--cpu", "nosuchcpu")
    assert code == USAGE and len(err.splitlines()) == 1
    assert "no CPU model 'nosuchcpu'" in err and "-cpu help" in err


def test_numbers_name_their_option():
    assert arguments.whole("3", "--smp", minimum=1) == 3 and arguments.whole(None, "--x") is None
    assert arguments.number("1.5", "--seconds") == 1.5
    for text, minimum in (("abc", 0.0), ("-1", 0.0), ("nan", 0.0), ("", 0.0)):
        with pytest.raises(UsageError, match="--seconds"):  # '' too: typed, not left out
            arguments.number(text, "--seconds", minimum=minimum, default=2.0)


def test_a_bug_is_one_line_and_debug_shows_its_traceback(capsys, monkeypatch):
    from cli import ledger

    def broken(*_args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(ledger, "verify", broken)
    code, _, err = run_main(capsys, "ledger", "verify")
    assert code == FAILURE and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "ZeroDivisionError" in err and "--debug" in err
    code, _, err = run_main(capsys, "ledger", "verify", "--debug")
    assert code == FAILURE and "Traceback" in err and err.splitlines()[-1].startswith("error: ")
    monkeypatch.setenv("METAOS_DEBUG", "1")
    assert "Traceback" in run_main(capsys, "ledger", "verify")[2]


def test_through_the_script_too(files):
    done = run_script("sem", "show", "sort3", "--db", files["empty_db"])
    assert done.returncode == USAGE and done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: no routine is called or identified by 'sort3'; `sem add FILE.py` stores routines,"
        " `sem names ID` lists names"]


def _closed_pipe_run(*argv: str) -> subprocess.CompletedProcess:
    """Run ./run with stdout a pipe whose reader has already gone (`| head` that exited)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return run_script(*argv, stdout=write)
    finally:
        os.close(write)


def test_a_closed_pipe_ends_quietly(tmp_path):
    db = str(tmp_path / "metaos.db")
    assert run_script("sem", "add", ROUTINES, "--db", db).returncode == 0
    for argv in (("sem", "show", "p24", "--view", "c", "--db", db), ("--list",),
                 ("capabilities", "--db", db)):
        done = _closed_pipe_run(*argv)
        assert (done.returncode, done.stderr) == (0, ""), argv


def _task_spellings() -> list[str]:
    """Every task as a user types it: `discover`, `sem show`, `bench probes`."""
    names = list(tasks.ns.tasks)
    for group, collection in tasks.ns.collections.items():
        names += [f"{group} {name}" for name in collection.tasks]
    return names


@pytest.mark.parametrize("task", _task_spellings())
def test_help_before_or_after_every_task(capsys, task):
    words = task.split()
    docstring = tasks.ns.task_with_config(".".join(words))[0].__doc__.split("\n")[0].split()
    for argv in ([*words, "--help"], ["--help", *words]):
        code, out, err = run_main(capsys, *argv)
        assert (code, err) == (0, ""), argv
        assert "Usage: ./run" in out and " ".join(docstring[:4]) in " ".join(out.split()), argv


def test_help_of_a_grouped_task_with_arguments_through_the_script():
    done = run_script("sem", "run", "--help")
    assert done.returncode == 0 and "Usage: ./run" in done.stdout and "--vectors" in done.stdout


def test_the_probe_help_names_every_family_and_its_architectures():
    from probes.catalogue import FAMILIES

    text = tasks.probe.help["family"]
    for name, family in FAMILIES.items():
        clause = next(part for part in text.split(";") if f" {name}" in f" {part}")
        arches = {"x86_64", "riscv64"} if "both" in clause else {
            a for a in ("x86_64", "riscv64") if a in clause}
        assert arches == {a.name for a in family.arches}, name


def test_spellings_map_to_invokes():
    assert normalize(["sem", "show", "x"], tasks.ns) == ["sem.show", "x"]
    assert normalize(["sem", "run", "--help"], tasks.ns) == ["--help", "sem.run"]
    assert normalize(["--help", "sem", "run"], tasks.ns) == ["--help", "sem.run"]
    assert normalize(["bench", "--runs", "3"], tasks.ns) == ["bench", "--runs", "3"]
    assert normalize(["--debug", "sem", "names", "x"], tasks.ns) == ["sem.names", "x"]
    assert normalize(["ledger"], tasks.ns) == ["--list", "ledger"]


# -- only the CLI layer prints ---------------------------------------------------------------

BELOW_CLI = ("arch", "boot", "contract", "discovery", "kernel", "link", "probes", "qemu", "sem",
             "stores", "testing", "toolchain")


def test_nothing_below_the_cli_prints_or_renders():
    found = []
    for package in BELOW_CLI:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: print()")
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                found += [f"{path.relative_to(REPO)}:{node.lineno}: imports {n}"
                          for n in names if n.split(".")[0] == "rich"]
    assert found == []


# -- the discover command loads only what it uses ----------------------------------------------

HEAVY = ("z3", "unicorn", "keystone", "capstone")


def test_the_discover_task_imports_no_engine():
    """Every module the discover task imports, and a guest reused from the build cache."""
    subprocess.run([sys.executable, "-c", "from arch import X86_64\n"
                    "from kernel.guest import build_guest\nbuild_guest(X86_64)"],
                   cwd=REPO, check=True, timeout=300)  # a build (it may import keystone)
    script = (
        "import sys\n"
        "import tasks, cli.program, cli.arguments, cli.discover, cli.schemas, cli.report\n"
        "import link.session, discovery.inventory, discovery.dumps, discovery.verify\n"
        "import qemu.groundtruth, link.describe\n"
        "from arch import X86_64\nfrom kernel.guest import build_guest\n"
        "build_guest(X86_64)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.qemu
def test_the_discover_command_imports_no_engine():
    """The real command, with Python's own import log (PYTHONPROFILEIMPORTTIME)."""
    done = subprocess.run([str(REPO / "run"), "discover", "--accel", "tcg", "--json", "-"],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "discovery.inventory" in imported  # the log is there
    assert not imported & set(HEAVY)


def test_a_market_refused_for_a_routine_name_stores_nothing(capsys, files):
    code, _, err = run_main(capsys, "market", "--routines", "p99", "--db", files["market_db"])
    assert code == USAGE and "p99" in err
    assert not Path(files["market_db"]).exists()  # refused before the database was opened


@pytest.mark.qemu
@pytest.mark.timeout(300)
def test_ctrl_c_ends_a_motherboard_run_and_keeps_what_it_did(capsys, monkeypatch, tmp_path):
    """Ctrl-C (KeyboardInterrupt in the loop, here raised as the live table is drawn once
    a task is accepted) ends the run where it is: its boards, board host and checkers
    stopped, the accepted tasks paid in the ledger, the record written and marked, one
    line saying so, exit status 130."""
    import json
    import multiprocessing

    import cli.motherboard as command
    from cli.errors import INTERRUPTED
    from motherboard.entries import TaskState
    from stores.ledger import Ledger

    drawn = command.board_table

    def table(mb, *args):
        if any(t.state == TaskState.ACCEPTED for t in mb.workload_tasks()):
            raise KeyboardInterrupt
        return drawn(mb, *args)

    monkeypatch.setattr(command, "board_table", table)
    record, db = tmp_path / "run.json", tmp_path / "run.db"
    code, _, err = run_main(capsys, "motherboard", "--boards", "q35:qemu64", "--workload",
                            "stream-small", "--calibration", "2", "--json", str(record),
                            "--db", str(db))
    assert code == INTERRUPTED and len(err.splitlines()) == 1, err
    assert err.startswith("error: the run was stopped with ") and str(record) in err, err
    doc = json.loads(record.read_text())
    accepted = [t for t in doc["tasks"] if t["accepted_at"] is not None]
    assert doc["interrupted"] is True and accepted
    assert Ledger.open(str(db)).size == len(accepted)  # a payment per accepted task
    # the run's board host and checkers (not the suite's own: tests/conftest.py)
    assert not [p.name for p in multiprocessing.active_children()
                if p.name == "board host" or p.name.startswith("checker")]


def test_a_sem_command_on_a_mistyped_database_path_leaves_no_database_there(capsys, tmp_path):
    typo = tmp_path / "metaos.bd"
    for command in (["sem", "show", "p01"], ["sem", "names", "p01"], ["sem", "history", "p01"],
                    ["sem", "equiv", "p01", "p02"], ["sem", "rename", "p01", "q01"]):
        code, _, err = run_main(capsys, *command, "--db", str(typo))
        assert code == USAGE and "no database at" in err, (command, err)
    assert not typo.exists()


def test_bench_market_compare_without_reports_says_to_run_the_bench_first(capsys, monkeypatch,
                                                                           tmp_path):
    monkeypatch.chdir(tmp_path)  # a folder with no build/ reports in it
    code, _, err = run_main(capsys, "bench", "market", "--compare")
    assert code == USAGE and len(err.splitlines()) == 1, err
    assert "build/market-no-sharing.json" in err and "./run bench market" in err, err


@pytest.mark.parametrize("command", [
    "motherboard --boards q35:qemu64 --decline q35:qemu64=p99",
    "motherboard --boards q35:qemu64,virt:rv64 --kill foo@1",
    "motherboard --boards q35:qemu64 --workload {p99_workload}"])
def test_a_motherboard_run_refused_says_nothing_before_its_error(capsys, tmp_path, command):
    """Every name a run looks up is looked up before it says it boots anything."""
    workload = tmp_path / "p99.json"
    workload.write_text('{"schema": "metaos.workload/1", "tasks": '
                        '[{"id": "a", "routine": "p99", "size": 3}]}')
    code, out, err = run_main(capsys, *shlex.split(command.format(p99_workload=workload)))
    assert code == USAGE and out == "" and len(err.splitlines()) == 1, (out, err)
