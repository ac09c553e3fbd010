"""Job templates (jobs/) and ``python -m hpc_rg.jobs render``: syntax, layout, errors, smoke runs.

Serial and fast: the schedulers are faked by PATH-prepended ``srun``/``scontrol``/``mpiexec``/
``qsub``/``python`` scripts that record their arguments, so only the scripts' own logic runs.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpc_rg.config import load_config, work_units
from hpc_rg.jobs import examples as E
from hpc_rg.jobs import render as R

REPO = Path(__file__).resolve().parents[2]
JOB_FILES = sorted(p for p in (REPO / "jobs").rglob("*") if p.suffix in (".sbatch", ".pbs"))
DECKS = ["inputs/quickstart.yaml", "inputs/ea3d.yaml", "inputs/ising2d.yaml"]


def bash_n(path):
    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, f"{path}: {r.stderr}"


def render(tmp_path, *args, name="job.sh"):
    out = tmp_path / name
    text, lay = R.render([*map(str, args), "--out", str(out)])
    out.write_text(text)
    return out, text, lay


def layout_of(text, scheduler):
    """(nodes, tasks per node, ranks in the launch line, gpus per node or 0) from a script."""
    if scheduler == "slurm":
        nodes = int(re.search(r"^#SBATCH --nodes=(\d+)$", text, re.M)[1])
        tpn = int(re.search(r"^#SBATCH --ntasks-per-node=(\d+)$", text, re.M)[1])
        g = re.search(r"^#SBATCH --gpus-per-node=(\d+)$", text, re.M)
        launch = re.search(r"^srun .*$", text, re.M)[0]
        ranks = int(re.search(r"--ntasks=(\d+)", launch)[1])
        assert f"--nodes={nodes}" in launch and f"--ntasks-per-node={tpn}" in launch
    else:  # ranks = PPN x the nodes PBS allocates (the select line's count outside PBS)
        m = re.search(r"^#PBS -l select=(\d+):ncpus=\d+(?::ngpus=(\d+))?:mpiprocs=(\d+)",
                      text, re.M)
        nodes, tpn = int(m[1]), int(m[3])
        g = int(m[2]) if m[2] else 0
        assert int(re.search(r"^PPN=(\d+) ", text, re.M)[1]) == tpn
        fallback = int(re.search(r"\|\| NODES=(\d+)$", text, re.M)[1])
        launch = re.search(r"^mpiexec .*$", text, re.M)[0]
        assert launch.startswith("mpiexec -n $NRANKS --map-by ppr:$PPN:node:PE=$THREADS ")
        assert re.search(r"^NRANKS=\$\(\(NODES \* PPN\)\) ", text, re.M)
        return nodes, tpn, fallback * tpn, g
    return nodes, tpn, ranks, int(g[1]) if g else 0


# ------------------------------------------------------------------ templates in jobs/
def test_job_templates_exist():
    names = {p.relative_to(REPO / "jobs").as_posix() for p in JOB_FILES}
    assert {"slurm/cpu.sbatch", "slurm/gpu.sbatch", "slurm/array.sbatch",
            "pbs/cpu.pbs", "pbs/gpu.pbs", "pbs/array.pbs"} <= names
    assert (REPO / "jobs" / "README.md").is_file()


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.name)
def test_job_template_syntax_and_header(path):
    bash_n(path)
    text = path.read_text()
    head = text.split("\n#SBATCH")[0].split("\n#PBS")[0]
    assert text.startswith("#!/bin/bash\n# hpc_rg")
    assert "# Edit:" in head and "# Runs:" in head and "exits 3" in head
    assert "--resume" in text and "if [ $rc -eq 3 ]" in text
    assert ("scontrol requeue" in text) if path.suffix == ".sbatch" else ("qsub" in text)
    if path.suffix == ".sbatch":
        assert "#SBATCH --signal=B:TERM@120" in text and "#SBATCH --requeue" in text
        assert "trap '" in text  # SIGTERM to the batch shell must reach srun
    if "gpu" in path.name:
        assert "run.device=cuda" in text and "NCCL_SOCKET_IFNAME" in text
    if "array" in path.name:
        assert "run.output=$OUTPUT/task$TASK" in text and "run.seed=$((SEED + TASK))" in text


def test_shipped_examples_are_rendered_from_the_templates():
    """jobs/*.sbatch, jobs/*.pbs are exactly what ``python -m hpc_rg.jobs examples`` writes."""
    texts = E.example_texts()
    assert set(texts) == {p.relative_to(REPO / "jobs").as_posix() for p in JOB_FILES}
    for rel, text in texts.items():
        assert (REPO / "jobs" / rel).read_bytes() == text.encode(), \
            f"jobs/{rel} differs from its template: run python -m hpc_rg.jobs examples"


def test_examples_cli_writes_every_example(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hpc_rg.jobs", "examples", str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for rel in E.EXAMPLES:
        assert (tmp_path / rel).read_bytes() == (REPO / "jobs" / rel).read_bytes()
        assert (tmp_path / rel).stat().st_mode & stat.S_IXUSR


def test_slurm_gpu_template_one_rank_per_gpu():
    text = (REPO / "jobs/slurm/gpu.sbatch").read_text()
    g = re.search(r"^#SBATCH --gpus-per-node=(\d+)$", text, re.M)[1]
    assert re.search(rf"^#SBATCH --ntasks-per-node={g}$", text, re.M)


# ------------------------------------------------------------------ rank layout
@pytest.mark.parametrize("units,rpr,nodes,cores,gpus,ranks,tpn", [
    (128, 1, 2, 32, 0, 64, 32),  # ea3d: capacity-bound
    (128, 1, 8, 16, 0, 128, 16),
    (36, 1, 2, 32, 0, 36, 18),  # quickstart: all units, 18 per node
    (96, 1, 2, 32, 0, 48, 24),  # ising2d: 64 would not divide 96
    (4, 2, 1, 32, 0, 8, 8),  # slab decomposition: 4 groups x 2
    (7, 1, 1, 4, 0, 1, 1),  # prime: only 1 divides evenly into <= 4
    (128, 1, 2, 64, 4, 8, 4),  # GPU: one rank per GPU
    (36, 1, 2, 64, 4, 6, 3),  # GPU: 8 does not divide 36 -> 3 per node
])
def test_plan_layout(units, rpr, nodes, cores, gpus, ranks, tpn):
    lay = R.plan_layout(units, rpr, nodes, cores, gpus)
    assert (lay.ranks, lay.tasks_per_node) == (ranks, tpn)
    assert lay.nodes * lay.tasks_per_node == lay.ranks
    assert lay.ranks % rpr == 0 and units % (lay.ranks // rpr) == 0
    assert lay.tasks_per_node * lay.cpus_per_task <= cores
    if gpus:
        assert lay.gpus_per_node == lay.tasks_per_node


def test_plan_layout_threads_per_rank():
    lay = R.plan_layout(128, 1, 2, 32, threads_per_rank=16)  # one rank per 16-core socket
    assert (lay.ranks, lay.tasks_per_node, lay.cpus_per_task) == (4, 2, 16)


@pytest.mark.parametrize("args,match", [
    ((128, 1, 3, 32), "use --nodes 2"),
    ((128, 1, 3, 64, 4), "use --nodes 2"),
    ((4, 16, 1, 8), "ranks_per_replica=16 needs more than 8"),
])
def test_plan_layout_impossible(args, match):
    with pytest.raises(R.JobRenderError, match=match):
        R.plan_layout(*args)


# ------------------------------------------------------------------ rendered scripts
@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
@pytest.mark.parametrize("gpus", [0, 4])
@pytest.mark.parametrize("deck", DECKS)
def test_render_layout(tmp_path, deck, scheduler, gpus):
    args = [deck, "--scheduler", scheduler, "--nodes", 2, "--time", "12:00:00"]
    if gpus:
        args += ["--gpus-per-node", gpus, "--cores-per-node", 64]
    out, text, lay = render(tmp_path, *args)
    bash_n(out)
    nodes, tpn, ranks, g = layout_of(text, scheduler)
    assert nodes == 2 and nodes * tpn == ranks == lay.ranks
    if gpus:
        assert g == tpn and 1 <= g <= gpus and "--set run.device=cuda" in text
    else:
        assert g == 0 and "run.device=cuda" not in text
    cfg = load_config(REPO / deck, world_size=ranks)  # the job's own validation passes
    assert work_units(cfg) % (ranks // cfg.sample.ranks_per_replica) == 0
    assert f"CONFIG=${{CONFIG:-{deck}}}" in text and '"$CONFIG" --resume' in text
    assert "if [ $rc -eq 3 ]" in text
    assert ("scontrol requeue" if scheduler == "slurm" else "qsub") in text
    assert "@@" not in text and "12:00:00" in text
    assert ("--time=12:00:00" if scheduler == "slurm" else "walltime=12:00:00") in text


def test_render_options(tmp_path):
    out, text, lay = render(tmp_path, "inputs/ea3d.yaml", "--scheduler", "slurm", "--nodes", 1,
                            "--account", "proj7", "--partition", "short", "--array", 4,
                            "--set", "model.disorder_samples=64", "--name", "ea-small")
    assert "#SBATCH --account=proj7" in text and "#SBATCH --partition=short" in text
    assert "#SBATCH --array=0-3" in text and "#SBATCH --job-name=ea-small" in text
    assert "--set model.disorder_samples=64" in text and lay.units == 64
    assert "OUTPUT=${OUTPUT:-runs/ea3d}" in text and "SEED=${SEED:-7}" in text
    _, ptext, _ = render(tmp_path, "inputs/ea3d.yaml", "--scheduler", "pbs", "--nodes", 1,
                         "--array", 4, "--account", "proj7", "--partition", "short", name="p.pbs")
    assert "#PBS -J 0-3" in ptext and "#PBS -A proj7" in ptext and "#PBS -q short" in ptext
    assert f"JOB_SCRIPT=${{JOB_SCRIPT:-{tmp_path / 'p.pbs'}}}" in ptext


def test_render_cli_writes_script(tmp_path):
    out = tmp_path / "ea3d.sbatch"
    r = subprocess.run([sys.executable, "-m", "hpc_rg.jobs", "render", "--scheduler", "slurm",
                        "inputs/ea3d.yaml", "--nodes", "2", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0].startswith("hpc_rg.jobs: 128 disorder samples") and "64" in lines[0]
    assert out.stat().st_mode & stat.S_IXUSR
    bash_n(out)


@pytest.mark.parametrize("args,word", [
    (["--scheduler", "lsf", "inputs/ea3d.yaml", "--nodes", "1"], "--scheduler lsf"),
    (["--scheduler", "slurm", "missing.yaml", "--nodes", "1"], "missing.yaml"),
    (["--scheduler", "slurm", "inputs/ea3d.yaml", "--nodes", "0"], "--nodes 0"),
    (["--scheduler", "slurm", "inputs/ea3d.yaml"], "--nodes"),
    (["--scheduler", "slurm", "inputs/ea3d.yaml", "--nodes", "two"], "--nodes"),
    (["--scheduler", "slurm", "inputs/ea3d.yaml", "--nodes", "3"], "use --nodes 2"),
    (["--scheduler", "pbs", "inputs/ea3d.yaml", "--nodes", "1", "--gpus-per-node", "-1"],
     "--gpus-per-node -1"),
    (["--scheduler", "slurm", "inputs/ea3d.yaml", "--nodes", "1", "--time", "4h"], "--time 4h"),
    (["--scheduler", "slurm", "inputs/ea3d.yaml", "--nodes", "1", "--array", "1"], "--array 1"),
    (["--scheduler", "slurm", "inputs/ea3d.yaml", "--nodes", "1", "--account", "a b"],
     "--account"),
    (["--scheduler", "slurm", "inputs/ea3d.yaml", "--nodes", "1", "--set", "sample.L=7",
      "--set", "model.replicas=1"], "sample.L=7"),
    (["--scheduler", "slurm", "inputs/ea3d.yaml", "--nodes", "1", "--out", "/no/such/dir/j.sh"],
     "--out"),
])
def test_render_bad_input(args, word, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert R.cli(args) == 2
    cap = capsys.readouterr()
    lines = cap.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpc_rg.jobs: error: ") and word in lines[0]
    assert cap.out == ""


def test_render_bad_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sample: [1, 2\n")
    assert R.cli(["--scheduler", "slurm", str(bad), "--nodes", "1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "not valid YAML" in err[0]


def test_missing_template(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(R, "TEMPLATE_DIR", tmp_path)
    assert R.cli(["--scheduler", "pbs", "inputs/ea3d.yaml", "--nodes", "1",
                  "--gpus-per-node", "4"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "no GPU template for pbs" in err[0]


def test_main_needs_render_command():
    r = subprocess.run([sys.executable, "-m", "hpc_rg.jobs", "draw"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1


# ------------------------------------------------------------------ smoke runs, faked scheduler
FAKE_SRUN = """#!/bin/bash
echo "srun $*" >> "$FAKE_LOG"
if [ -n "${FAKE_WAIT:-}" ]; then
    trap 'echo "srun got TERM" >> "$FAKE_LOG"; exit 3' TERM
    touch "$FAKE_LOG.ready"
    for i in $(seq 100); do sleep 0.1; done
    exit 0
fi
exit ${FAKE_RC:-0}
"""
FAKE_SCONTROL = '#!/bin/bash\necho "scontrol $*" >> "$FAKE_LOG"\n'


def fake_bin(tmp_path, **scripts):
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for name, body in scripts.items():
        p = d / name
        p.write_text(body)
        p.chmod(0o755)
    return d


def slurm_env(tmp_path, bindir, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(PATH=f"{bindir}:{env['PATH']}", FAKE_LOG=str(tmp_path / "log"),
               WORKDIR=str(tmp_path), VENV=str(tmp_path / "no-venv"), SLURM_JOB_ID="4242",
               SLURM_CPUS_PER_TASK="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.mark.parametrize("rc", [0, 1, 3])
def test_slurm_script_smoke(tmp_path, rc):
    out, _, _ = render(tmp_path, "inputs/ea3d.yaml", "--scheduler", "slurm", "--nodes", 2)
    bindir = fake_bin(tmp_path, srun=FAKE_SRUN, scontrol=FAKE_SCONTROL)
    r = subprocess.run(["bash", str(out)], env=slurm_env(tmp_path, bindir, FAKE_RC=rc),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == rc, r.stderr
    log = (tmp_path / "log").read_text().splitlines()
    assert log[0] == ("srun --nodes=2 --ntasks=64 --ntasks-per-node=32 --cpus-per-task=1 "
                      "--cpu-bind=cores python -m hpc_rg inputs/ea3d.yaml --resume")
    assert ("scontrol requeue 4242" in log) == (rc == 3)


def test_slurm_array_task_smoke(tmp_path):
    out, _, _ = render(tmp_path, "inputs/ea3d.yaml", "--scheduler", "slurm", "--nodes", 1,
                       "--array", 4)
    bindir = fake_bin(tmp_path, srun=FAKE_SRUN, scontrol=FAKE_SCONTROL)
    env = slurm_env(tmp_path, bindir, SLURM_ARRAY_TASK_ID=2, SLURM_RESTART_COUNT=20)
    r = subprocess.run(["bash", str(out)], env={**env, "FAKE_RC": "3"}, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 3
    log = (tmp_path / "log").read_text().splitlines()
    assert log[0].endswith("--resume --set run.output=runs/ea3d/task2 --set run.seed=9")
    assert not any(x.startswith("scontrol") for x in log)  # MAX_REQUEUE reached
    assert "after 20 requeues" in r.stderr


def test_slurm_sigterm_reaches_srun_and_requeues(tmp_path):
    """--signal=B:TERM: the batch shell gets SIGTERM; srun must get it too, then requeue."""
    out, _, _ = render(tmp_path, "inputs/ising2d.yaml", "--scheduler", "slurm", "--nodes", 1)
    bindir = fake_bin(tmp_path, srun=FAKE_SRUN, scontrol=FAKE_SCONTROL)
    proc = subprocess.Popen(["bash", str(out)], env=slurm_env(tmp_path, bindir, FAKE_WAIT=1),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = tmp_path / "log.ready"
    t0 = time.time()
    while not ready.exists() and time.time() - t0 < 20:
        time.sleep(0.05)
    assert ready.exists()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    log = (tmp_path / "log").read_text().splitlines()
    assert "srun got TERM" in log and "scontrol requeue 4242" in log
    assert "passing it to srun" in err


FAKE_MPIEXEC = """#!/bin/bash
# skip Open MPI options, run the command (bash -c RELAY relay python ...) once; forward USR1
echo "mpiexec $*" >> "$FAKE_LOG"
while [ "$1" != bash ]; do shift; done
"$@" & c=$!
trap 'kill -USR1 $c' USR1
while kill -0 $c 2>/dev/null; do wait $c; done
wait $c
"""
FAKE_PYTHON = """#!/bin/bash
echo "python $*" >> "$FAKE_LOG"
trap 'echo "python got TERM" >> "$FAKE_LOG"; exit 3' TERM
for i in $(seq 100); do sleep 0.1; done
exit 0
"""
FAKE_QSUB = '#!/bin/bash\necho "qsub $*" >> "$FAKE_LOG"\ncat > "$FAKE_LOG.qsub"\n'


def test_pbs_timer_relay_and_resubmit(tmp_path):
    """Timer -> SIGUSR1 to mpiexec -> relay -> SIGTERM to hpc_rg -> exit 3 -> qsub."""
    out, _, _ = render(tmp_path, "inputs/ea3d.yaml", "--scheduler", "pbs", "--nodes", 1,
                       "--time", "00:05:00", "--array", 2, name="ea.pbs")
    bindir = fake_bin(tmp_path, mpiexec=FAKE_MPIEXEC, python=FAKE_PYTHON, qsub=FAKE_QSUB)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PBS_")}
    env.update(PATH=f"{bindir}:{env['PATH']}", FAKE_LOG=str(tmp_path / "log"),
               WORKDIR=str(tmp_path), VENV=str(tmp_path / "no-venv"), PBS_ARRAY_INDEX="1",
               STOP_BEFORE="299")  # the timer fires 1 s after the start
    r = subprocess.run(["bash", str(out)], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 3, r.stderr
    log = (tmp_path / "log").read_text().splitlines()
    assert log[0].startswith("mpiexec -n 32 --map-by ppr:32:node:PE=1 --bind-to core bash -c")
    assert log[1] == ("python -m hpc_rg inputs/ea3d.yaml --resume "
                      "--set run.output=runs/ea3d/task1 --set run.seed=8")
    assert "python got TERM" in log
    assert "qsub -v CONFIG=inputs/ea3d.yaml,HPC_RG_TASK=1,HPC_RG_RESUBMIT=1" in log
    resubmitted = (tmp_path / "log.qsub").read_text()
    assert "#PBS -J" not in resubmitted and "#PBS -l walltime=00:05:00" in resubmitted


@pytest.mark.parametrize("name", ["cpu.sbatch", "gpu.sbatch", "array.sbatch"])
def test_slurm_template_smoke(tmp_path, name):
    bindir = fake_bin(tmp_path, srun=FAKE_SRUN, scontrol=FAKE_SCONTROL)
    env = slurm_env(tmp_path, bindir, FAKE_RC=3, SLURM_SUBMIT_DIR=tmp_path,
                    SLURM_ARRAY_TASK_ID=5)
    r = subprocess.run(["bash", str(REPO / "jobs/slurm" / name)], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 3, r.stderr
    log = (tmp_path / "log").read_text().splitlines()
    launch = {"cpu.sbatch": "--nodes=2 --ntasks=64 --ntasks-per-node=32 --cpus-per-task=1",
              "gpu.sbatch": "--nodes=2 --ntasks=8 --ntasks-per-node=4 --cpus-per-task=8",
              "array.sbatch": "--nodes=1 --ntasks=32 --ntasks-per-node=32 --cpus-per-task=1"}
    assert log[0].startswith(f"srun {launch[name]} --cpu-bind=cores python -m hpc_rg "
                             f"inputs/ea3d.yaml --resume")
    if name == "array.sbatch":
        assert log[0].endswith("--set run.output=runs/ea3d/task5 --set run.seed=12")
    assert "scontrol requeue 4242" in log


@pytest.mark.parametrize("name", ["cpu.pbs", "gpu.pbs", "array.pbs"])
def test_pbs_template_smoke(tmp_path, name):
    bindir = fake_bin(tmp_path, mpiexec=FAKE_MPIEXEC, python=FAKE_PYTHON, qsub=FAKE_QSUB)
    (tmp_path / "nodes").write_text("n1\nn1\nn2\nn2\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PBS_")}
    env.update(PATH=f"{bindir}:{env['PATH']}", FAKE_LOG=str(tmp_path / "log"),
               PBS_O_WORKDIR=str(tmp_path), VENV=str(tmp_path / "no-venv"),
               PBS_NODEFILE=str(tmp_path / "nodes"), PBS_ARRAY_INDEX="3",
               JOB_SCRIPT=str(REPO / "jobs/pbs" / name), STOP_BEFORE=str(4 * 3600 - 1))
    r = subprocess.run(["bash", str(REPO / "jobs/pbs" / name)], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 3, r.stderr
    log = (tmp_path / "log").read_text().splitlines()
    ppn = 4 if name == "gpu.pbs" else 32
    assert log[0].startswith(f"mpiexec -n {2 * ppn} --map-by ppr:{ppn}:node:PE=")
    assert log[1].startswith("python -m hpc_rg inputs/ea3d.yaml --resume")
    assert "python got TERM" in log
    qsub = next(x for x in log if x.startswith("qsub"))
    assert "HPC_RG_RESUBMIT=1" in qsub
    if name == "array.pbs":
        assert log[1].endswith("--set run.output=runs/ea3d/task3 --set run.seed=10")
        assert "HPC_RG_TASK=3" in qsub
        assert "#PBS -J" not in (tmp_path / "log.qsub").read_text()
