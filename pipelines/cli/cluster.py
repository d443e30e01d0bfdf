"""``pipe train-ae --cluster-demo N``: a multi-worker cluster of N processes on this machine.

Each worker is ``pipe train-ae --strategy multi-worker`` with the ``TF_CONFIG`` a host of a real
cluster would get, on loopback ports; worker 0 is the chief and the only one that writes the run
directory. The chief's results go to stdout; every worker's logs go to stderr, prefixed with its
index. The cores are shared out between the workers so that they do not oversubscribe them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import click


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on the loopback interface right now."""
    sockets = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(ports: Sequence[int], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` in a loopback cluster on ``ports``."""
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})


class _Worker:
    """One worker process and the threads relaying its output."""

    def __init__(self, index: int, args: Sequence[str], env: dict[str, str]):
        self.index, self.last_error = index, ""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines", *args], env=env, text=True, bufsize=1,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # a terminal Ctrl-C reaches the demo, which forwards it once
        )
        streams = ((self.process.stdout, False), (self.process.stderr, True))
        self.relays = [threading.Thread(target=self._relay, args=stream, daemon=True)
                       for stream in streams]
        for relay in self.relays:
            relay.start()

    def _relay(self, stream, is_err: bool) -> None:
        for line in stream:
            line = line.rstrip("\n")
            if is_err and line.strip():
                self.last_error = line
            if self.index == 0 and not is_err:
                click.echo(line)
            else:
                click.echo(f"[worker {self.index}] {line}", err=True)

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)


def run_cluster_demo(n_workers: int, args: Sequence[str]) -> None:
    """Run ``pipe ARGS --strategy multi-worker`` as ``n_workers`` local workers and wait for all.

    Raises :class:`click.ClickException` with the exit status and last error line of the first
    worker that fails, after stopping the others (they would wait for it forever).
    """
    ports = free_ports(n_workers)
    threads = str(max(1, (os.cpu_count() or 1) // n_workers))
    workers: list[_Worker] = []

    def forward_interrupt(signum, frame):
        for worker in workers:  # each saves a checkpoint at the same step, then exits
            worker.signal(signal.SIGINT)

    previous_handler = signal.signal(signal.SIGINT, forward_interrupt)
    try:
        for i in range(n_workers):
            workers.append(_Worker(i, [*args, "--strategy", "multi-worker"], dict(
                os.environ, TF_CONFIG=tf_config(ports, i),
                TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS=threads)))
        click.echo(f"cluster demo: {n_workers} worker(s) on 127.0.0.1 ports "
                   f"{', '.join(map(str, ports))}, {threads} thread(s) each", err=True)
        stopping = False
        while any(w.process.poll() is None for w in workers):
            time.sleep(0.2)
            if not stopping and any(w.process.poll() not in (None, 0) for w in workers):
                stopping = True
                for worker in workers:
                    worker.signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    for worker in workers:
        for relay in worker.relays:
            relay.join()
    # Report the first worker (the chief, if it failed) that was not stopped by us.
    failures = sorted((w for w in workers if w.process.returncode != 0),
                      key=lambda w: (w.process.returncode == -signal.SIGTERM, w.index))
    if failures:
        failed, code = failures[0], failures[0].process.returncode
        error = click.ClickException(
            f"worker {failed.index} exited with status {code}: "
            f"{failed.last_error.removeprefix('Error: ') or 'no message'}")
        error.exit_code = code if code > 0 else 128 - code
        raise error
