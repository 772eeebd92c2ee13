"""Sweeps: the backend-neutral entry point, and the Ray backend on a real Ray cluster started by the test.

The cluster is a head node and one worker node (separate raylets, one CPU each) on a loopback address,
inside a network namespace of its own (``unshare --user --map-root-user --net``) whose only interface is
loopback: Ray's GCS and raylets listen on every interface (``*:port``), and in that namespace every
interface is loopback, so nothing the test starts can be reached from outside this machine. The Ray
processes and every driver (``run_configs`` in a child process, the ``apt sweep`` CLI) join it with
``nsenter``. Ray replaces 127.0.0.1 by the machine's routable address (``resolve_ip_for_localhost``),
so the nodes use 127.0.0.2, which is loopback too. The cluster also requires a token made for the test
(Ray's token authentication), which keeps the test independent of a token in ``~/.ray``. Where user
namespaces are disabled the cluster fixture fails and says so; ``APT_RAY_TEST_HOST_NETWORK=1`` runs it
on the host's network instead (token-protected, but listening on every interface). Teardown kills every
process of that cluster and the namespace's holder by pid, also when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from test_resume import _strip_timing

from apt.config import Config
from apt.data_dir import REPO_ROOT, data_dir
from apt.experiment import record_path
from apt.store import read_record
from apt.sweep import SweepReport, grid, run_configs
from apt.sweep_ray import CPUS_PER_RUN, _infeasible, task_name, task_resources

LOOPBACK = "127.0.0.2"
CLUSTER_TIMEOUT_SECONDS = 120


# ------------------------------------------------------------------------------------------------------
# A real local Ray cluster
# ------------------------------------------------------------------------------------------------------
def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process (Linux /proc; Ray workers rename themselves)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        table[int(entry.name)] = (parent, cmdline)
    return table


def _cluster_pids(markers: tuple[str, ...]) -> set[int]:
    """Processes whose command line names this cluster (its temp dir or address), and all their descendants."""
    table = _processes()
    pids = {pid for pid, (_, cmdline) in table.items() if any(m in cmdline for m in markers)}
    grew = True
    while grew:
        children = {pid for pid, (parent, _) in table.items() if parent in pids} - pids
        pids |= children
        grew = bool(children)
    return pids - {os.getpid()}


def _kill(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


HOST_NETWORK_ENV = "APT_RAY_TEST_HOST_NETWORK"


def _free_port() -> int:
    """A port free on the host's loopback (and so in the cluster's empty namespace too)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _private_network() -> tuple[subprocess.Popen | None, list[str]]:
    """A process holding a new user + network namespace with loopback up, and the command prefix that joins it.

    ``(None, [])`` when ``APT_RAY_TEST_HOST_NETWORK=1`` asks for the host's network instead.
    """
    if os.environ.get(HOST_NETWORK_ENV) == "1":
        return None, []
    tools = {name: shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
             for name in ("unshare", "nsenter", "ip")}
    missing = [name for name, path in tools.items() if path is None]
    assert not missing, (f"the Ray tests need {', '.join(missing)} (util-linux, iproute2) to keep their cluster on a "
                         f"private loopback network; or set {HOST_NETWORK_ENV}=1 to use the host's network")
    holder = subprocess.Popen([tools["unshare"], "--user", "--map-root-user", "--net", "--", "sh", "-c",
                               f"{tools['ip']} link set lo up && echo ready && exec sleep 86400"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if holder.stdout.readline().strip() != "ready":
        holder.kill()
        _, why = holder.communicate(timeout=30)
        raise AssertionError(f"could not make a private network namespace for the Ray cluster ({why.strip()}); "
                             f"enable unprivileged user namespaces or set {HOST_NETWORK_ENV}=1")
    return holder, [tools["nsenter"], f"--target={holder.pid}", "--user", "--net", "--preserve-credentials", "--"]


class Cluster:
    def __init__(self, address: str, env: dict[str, str], markers: tuple[str, ...], enter: list[str]) -> None:
        self.address = address
        self.env = env
        self.markers = markers  # what names this cluster's processes (``_cluster_pids``)
        self.enter = enter  # command prefix that joins the cluster's network namespace

    def run(self, command: list[str], **popen) -> subprocess.Popen:
        """Start ``command`` as a process of the cluster's network (a driver, the CLI)."""
        return subprocess.Popen([*self.enter, *command], cwd=REPO_ROOT, env=self.env, **popen)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Head (1 CPU) + one worker node (1 CPU) on 127.0.0.2 of a private network; all stopped by pid at the end."""
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's Unix socket paths live under it
    port = _free_port()
    address = f"{LOOPBACK}:{port}"
    ray_env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, **ray_env, "APT_DATA_DIR": str(data_dir()),
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    ray_cli = str(Path(sys.executable).parent / "ray")
    common = ["--node-ip-address", LOOPBACK, "--num-cpus", "1", "--object-store-memory", str(100_000_000),
              "--disable-usage-stats"]
    markers = (temp_dir, address)
    holder, enter = _private_network()
    try:
        for command in (
            [ray_cli, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp_dir}",
             *common],
            [ray_cli, "start", f"--address={address}", *common],
        ):
            done = subprocess.run([*enter, *command], env=env, capture_output=True, text=True,
                                  timeout=CLUSTER_TIMEOUT_SECONDS)
            assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
        yield Cluster(address, env, markers, enter)
    finally:
        _kill(_cluster_pids(markers))
        deadline = time.monotonic() + 30
        while (left := _cluster_pids(markers)) and time.monotonic() < deadline:
            _kill(left)
            time.sleep(0.2)
        if holder is not None:
            holder.kill()
            holder.communicate(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)  # Ray's session logs and sockets
        assert not left, f"Ray processes of the test cluster still alive: {sorted(left)}"


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Local reference runs with the thread count of a smoke Ray task (results depend on it in the last bits)."""
    before = torch.get_num_threads()
    torch.set_num_threads(CPUS_PER_RUN["smoke"])
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _record_files(results: Path) -> list[Path]:
    return sorted(p for p in results.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------------------
# Without a cluster
# ------------------------------------------------------------------------------------------------------
def test_run_configs_rejects_an_unknown_backend_and_an_address_without_ray(tmp_path):
    configs = [Config(benchmark="multi_mnist", profile="smoke")]
    with pytest.raises(ValueError, match="backend='slurm'"):
        run_configs(configs, backend="slurm", results_dir=tmp_path)
    with pytest.raises(ValueError, match="address='127.0.0.2:1' is for backend='ray'"):
        run_configs(configs, address="127.0.0.2:1", results_dir=tmp_path)


def test_task_resources_follow_profile_and_device():
    assert task_resources(Config(benchmark="qm9", profile="smoke")) == {"num_cpus": 1, "num_gpus": 0}
    assert task_resources(Config(benchmark="qm9", profile="cpu")) == {"num_cpus": 2, "num_gpus": 0}
    assert task_resources(Config(benchmark="qm9", profile="full", device="cuda")) == {"num_cpus": 2, "num_gpus": 1}
    with pytest.raises(ValueError, match="device='cuda:1'"):
        task_resources(Config(benchmark="qm9", profile="full", device="cuda:1"))


def test_a_run_no_node_can_take_is_reported_instead_of_queued_forever():
    nodes = [{"Alive": True, "Resources": {"CPU": 8.0}}, {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 4.0}},
             {"Alive": True, "Resources": {"CPU": 1.0, "GPU": 1.0}}]
    assert _infeasible({"num_cpus": 2, "num_gpus": 0}, nodes) is None
    assert _infeasible({"num_cpus": 1, "num_gpus": 1}, nodes) is None
    why = _infeasible({"num_cpus": 2, "num_gpus": 1}, nodes)  # CPUs on one node, the GPU on another: not enough
    assert why == "no node of the Ray cluster has 2 CPU(s) and 1 GPU(s) (largest: 8 CPUs, 1 GPUs)"


def test_cli_exit_code_and_summary_name_the_failed_runs(tmp_path):
    command = [sys.executable, "-m", "apt", "sweep", "--benchmark", "multi_mnist", "--methods", "ls",
               "--optimizers", "adam", "--no-stl", "--profile", "smoke", "--data-dir", str(tmp_path / "no-data"),
               "--results-dir", str(tmp_path / "results"), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    run_id = grid("multi_mnist", ["ls"], ["adam"], [0], profile="smoke", stl=False)[0].run_id
    assert done.returncode == 1, done.stderr
    assert "0 run, 0 already recorded, 1 failed" in done.stdout
    assert f"FAILED {run_id}: DataMissingError" in done.stdout and str(tmp_path / "no-data") in done.stdout


# ------------------------------------------------------------------------------------------------------
# On the cluster
# ------------------------------------------------------------------------------------------------------
# A driver inside the cluster's network: run_configs on the Ray backend, its SweepReport as JSON on the last line.
_RAY_DRIVER = (
    "import dataclasses, json, sys\n"
    "from apt.config import Config\n"
    "from apt.sweep import run_configs\n"
    "spec = json.loads(sys.argv[1])\n"
    "report = run_configs([Config.from_dict(c) for c in spec['configs']], backend='ray', address=spec['address'],\n"
    "                     results_dir=spec['results'], checkpoint_dir=spec['runs'], progress=False)\n"
    "print(json.dumps(dataclasses.asdict(report)))\n"
)


def _drive(cluster: Cluster, configs: list[Config], results: Path, runs: Path) -> SweepReport:
    """``run_configs(configs, backend="ray")`` from a driver process on the cluster's network."""
    spec = {"configs": [c.to_dict() for c in configs], "address": cluster.address, "results": str(results),
            "runs": str(runs)}
    driver = cluster.run([sys.executable, "-c", _RAY_DRIVER, json.dumps(spec)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 0, stderr
    return SweepReport(**json.loads(stdout.strip().splitlines()[-1]))


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_the_cluster_runs_on_a_network_of_its_own(cluster):
    if os.environ.get(HOST_NETWORK_ENV) == "1":
        pytest.skip(f"{HOST_NETWORK_ENV}=1: the cluster runs on the host's network")
    ours = os.readlink("/proc/self/ns/net")
    networks = {}
    for pid in _cluster_pids(cluster.markers):
        try:
            networks[pid] = os.readlink(f"/proc/{pid}/ns/net")
        except OSError:
            continue  # exited meanwhile
    servers = [pid for pid, (_, cmdline) in _processes().items() if pid in networks and "gcs_server" in cmdline]
    assert servers, "no GCS server among the cluster's processes"
    assert ours not in networks.values(), f"cluster processes on the host's network: {networks}"


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_ray_sweep_records_equal_local_records(cluster, tmp_path, one_thread):
    configs = grid("multi_mnist", ["ls", "mgda", "famo"], ["adam", "apt_muon"], [0], profile="smoke")  # 6 + 2 STL
    broken = Config(benchmark="multi_mnist", profile="smoke", seed=5, data_dir=str(tmp_path / "no-data"))
    ray_results, ray_runs = tmp_path / "ray", tmp_path / "ray-runs"

    report = _drive(cluster, [*configs, broken], ray_results, ray_runs)

    assert sorted(report.done) == sorted(c.run_id for c in configs) and not report.skipped
    assert not report.resumed, (
        f"runs resumed from checkpoints {report.resumed}: Ray retried their tasks, so a worker died mid-run (one "
        "cause: Ray's memory monitor kills workers when the machine is short of memory); this test needs one clean pass")
    assert list(report.failed) == [broken.run_id]
    assert report.failed[broken.run_id].startswith("DataMissingError") and "no-data" in report.failed[broken.run_id]
    assert _record_files(ray_results) == sorted(record_path(c, ray_results) for c in configs)  # no temp files
    assert _record_files(ray_runs) == []  # checkpoints are removed once the record exists

    local = run_configs(configs, backend="local", results_dir=tmp_path / "local", checkpoint_dir=tmp_path / "local-runs",
                        progress=False)
    assert sorted(local.done) == sorted(report.done)
    for config in configs:
        on_ray, here = read_record(record_path(config, ray_results)), read_record(record_path(config, tmp_path / "local"))
        assert on_ray["environment"]["torch_threads"] == here["environment"]["torch_threads"] == 1
        assert _strip_timing(on_ray) == _strip_timing(here), config.run_id

    again = _drive(cluster, configs, ray_results, ray_runs)
    assert sorted(again.skipped) == sorted(c.run_id for c in configs) and not again.done and not again.failed


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_killed_worker_is_retried_and_its_run_resumes(cluster, tmp_path, one_thread):
    epochs = 8
    configs = grid("multi_mnist", ["ls", "mgda"], ["adam", "apt_adam"], [0], profile="smoke", stl=False,
                   protocol_overrides={"epochs": epochs})
    results, runs = tmp_path / "results", tmp_path / "runs"
    command = [sys.executable, "-m", "apt", "sweep", "--benchmark", "multi_mnist", "--methods", "ls,mgda",
               "--optimizers", "adam,apt_adam", "--seeds", "0", "--no-stl", "--profile", "smoke",
               "--override", f"epochs={epochs}", "--backend", "ray", "--address", cluster.address,
               "--results-dir", str(results), "--runs-dir", str(runs), "--no-progress"]
    log = tmp_path / "sweep.log"
    with log.open("w") as stderr:
        sweep = cluster.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 300
        while killed is None:
            assert sweep.poll() is None, f"the sweep ended before a worker could be killed:\n{log.read_text()}"
            assert time.monotonic() < deadline, "no run reached its first checkpoint in time"
            mine = _cluster_pids(cluster.markers)  # only this test's cluster: never a worker of another Ray
            for pid, (_, cmdline) in _processes().items():
                if pid not in mine:
                    continue
                config = next((c for c in configs if cmdline.startswith(f"ray::{task_name(c)}")), None)
                if config is not None and (runs / config.benchmark / f"{config.run_id}.pt").exists():
                    os.kill(pid, signal.SIGKILL)  # the worker process executing this run, mid-training
                    killed = config
                    break
            time.sleep(0.05)
        stdout, _ = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait(timeout=30)

    assert sweep.returncode == 0, f"{stdout}\n{log.read_text()}"
    assert f"{len(configs)} run, 0 already recorded, 0 failed" in stdout
    assert _record_files(results) == sorted(record_path(c, results) for c in configs)  # each exactly once
    resumed = read_record(record_path(killed, results))
    assert resumed["resumed_at_epochs"] and 1 <= resumed["resumed_at_epochs"][0] <= epochs
    assert f"resumed {killed.run_id}" in stdout
    straight = run_configs([killed], results_dir=tmp_path / "local", checkpoint_dir=tmp_path / "local-runs",
                           progress=False)
    assert straight.done == [killed.run_id]
    assert _strip_timing(resumed) == _strip_timing(read_record(record_path(killed, tmp_path / "local")))


# ------------------------------------------------------------------------------------------------------
# Workers that share one data cache
# ------------------------------------------------------------------------------------------------------
QM9_HEAD_RECORDS = 100
# The child logs filelock's DEBUG messages: "Lock <id> not acquired on <path>, waiting ..." says it waits.
_LOAD_QM9 = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)\n"
    "from apt.benchmarks.qm9 import load_qm9\n"
    "print(len(load_qm9(sys.argv[1])))\n"
)


@pytest.mark.timeout(300)
def test_qm9_processing_waits_for_the_lock_another_worker_holds(tmp_path):
    """A process that needs QM9 while another holds the processing lock waits for it, then loads."""
    from apt.benchmarks.qm9 import prepare_qm9_root, processing_lock

    root = prepare_qm9_root(data_dir(), cache=tmp_path / "cache", max_records=QM9_HEAD_RECORDS)
    lock = processing_lock(root)
    with lock:
        child = subprocess.Popen([sys.executable, "-c", _LOAD_QM9, str(root)], cwd=REPO_ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            waiting = f"not acquired on {lock.lock_file}"
            for line in child.stderr:  # ends (and fails below) if the child exits without waiting
                if waiting in line:
                    break
            assert child.poll() is None, f"the child loaded QM9 without waiting for the lock: {child.communicate()}"
            assert not (root / "processed").exists(), "the child processed QM9 while the lock was held"
        except BaseException:
            child.kill()
            child.communicate()
            raise
    try:
        stdout, stderr = child.communicate(timeout=240)
    finally:
        if child.poll() is None:  # timed out: stop it before failing
            child.kill()
            child.communicate()
    assert child.returncode == 0, stderr
    assert int(stdout) == QM9_HEAD_RECORDS - 3  # PyG drops the 3 uncharacterized molecules among the first 100


def test_ray_workers_get_the_allocator_settings(tmp_path, monkeypatch):
    import ray

    from apt.allocator import GLIBC_ALLOCATOR_ENV

    seen = {}

    def fake_init(**kwargs):
        seen.update(kwargs)
        raise ConnectionError("stop here: only the arguments of ray.init are under test")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.delenv("APT_KEEP_ALLOCATOR", raising=False)
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "3")  # a value the user chose is passed on unchanged
    with pytest.raises(ConnectionError, match="stop here"):
        run_configs([Config(benchmark="multi_mnist", profile="smoke")], backend="ray", address="127.0.0.1:1",
                    results_dir=tmp_path, checkpoint_dir=tmp_path / "runs", progress=False)
    assert seen["runtime_env"] == {"env_vars": {**GLIBC_ALLOCATOR_ENV, "MALLOC_MMAP_MAX_": "3"}}
