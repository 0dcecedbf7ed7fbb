"""A master and its workers agree on where statistics live, and the master says what a lost worker cost.

A worker whose statistics are on the native core ships HDR buckets; a master (or worker) that keeps Locust's own
statistics would mix those with Locust's rounded buckets without a word. So both sides state their mode:

- the master sends its mode to each worker as it connects (a custom message); a worker of the other mode, or one
  that gets its first spawn message without having heard it (a master without locust-rs), logs one line that says
  what to change and quits;
- every worker report carries the worker's mode; a master that gets a report of the other mode (or from a worker
  without locust-rs, which carries none) logs the same line and stops the run with exit code 2.

A worker that stops reporting (killed, or its link cut) takes with it what it recorded since its last report (Locust's
workers report every 3 s), and a worker cut off that still runs, what it records while it stays lost. When Locust
marks it missing (about 3 s without a heartbeat) the master says so in one line: the worker, its address, how long
ago its last report came and what the master got from it in all (requests and failures). Each worker puts its
address in every report: the local address of its route to the master (the address the master sees it from, on a
machine with several), else its host name.
"""

from __future__ import annotations

from locust.runners import STATE_INIT, WORKER_REPORT_INTERVAL, MasterRunner, WorkerRunner

import logging
import socket
import time
from collections.abc import Callable

import gevent

from locust_rs._locust import state as _state

logger = logging.getLogger(__name__)

MODE_KEY = "locust_rs_stats"
# A worker's address, in each of its reports.
ADDRESS_KEY = "locust_rs_address"
HELLO = "locust_rs_stats_mode"
# A worker's answer when it does not match: the master may still be waiting for it to start the run.
REPLY = "locust_rs_stats_mismatch"
NATIVE = "native (locust-rs)"
LOCUST = "Locust's own (--locust-stats)"
# A worker without locust-rs says nothing.
ABSENT = "Locust's own (locust-rs not imported)"


class _Node:
    def __init__(self, environment, mode: str) -> None:
        self.environment = environment
        self.mode = mode
        self.heard_from_master = False
        self.stopping = False
        self.address: str | None = None
        self.last_report: dict[str, float] = {}
        # On the master, per worker: its address, and the requests and failures it reported in all.
        self.addresses: dict[str, str] = {}
        self.reported: dict[str, list[int]] = {}
        self.greeted: set[str] = set()
        self.lost: set[str] = set()
        # What else a lost worker cost, and who forgets it when it is back: (lost(client_id, now) -> words, back).
        self.lost_listeners: list[tuple[Callable[[str, float], str | None], Callable[[str], None]]] = []


class _Distributed:
    """This node's side of a distributed run (on its environment, :py:mod:`locust_rs._locust.state`)."""

    def __init__(self) -> None:
        self.node: _Node | None = None
        #: the master's word when it came before this worker's `init`
        self.early_hello = None


def _node_of(environment) -> _Node | None:
    return _state.of(environment, _Distributed).node


def _mismatch(here: str, there: str, who: str) -> str:
    return (
        f"statistics mismatch: this node keeps {here}, {who} keeps {there}; start the master and every worker with "
        "the same locustfile imports and the same --locust-stats setting"
    )


def install() -> None:
    """Registers the worker's handler before its runner connects. At ``init`` it would be late: the runner's
    constructor connects, and the master's word can arrive while it waits for the master's acknowledgement."""
    connect = WorkerRunner.connect_to_master
    if getattr(connect, "_locust_rs", False):
        return

    def connect_to_master(self, *args, **kwargs):
        if HELLO not in self.custom_messages:
            self.register_message(HELLO, _on_hello)
        return connect(self, *args, **kwargs)

    connect_to_master._locust_rs = True  # type: ignore[attr-defined]
    WorkerRunner.connect_to_master = connect_to_master  # type: ignore[method-assign]


def setup(environment, native: bool) -> None:
    """At ``init``: states this node's mode to the other side (master or worker)."""
    state = _state.of(environment, _Distributed)
    runner = environment.runner
    if not isinstance(runner, MasterRunner | WorkerRunner):
        state.node = None
        return
    node = state.node = _Node(environment, NATIVE if native else LOCUST)
    if isinstance(runner, WorkerRunner):
        # Before anything that can yield (own_address resolves a name, which gevent does in a thread): a worker
        # joining a running test gets its first spawn message meanwhile, and must have heard the master by then.
        if state.early_hello is not None:
            msg, state.early_hello = state.early_hello, None
            _on_hello(environment, msg)
        node.address = own_address(runner.master_host, runner.master_port)
        return
    runner.register_message(REPLY, _on_reply)

    def on_connect(client_id, **_kw) -> None:
        _greet(node, client_id)

    environment.events.worker_connect.add_listener(on_connect)
    # Workers that connected before this `init` (with --processes they connect while the master's `init` listeners
    # still run) are greeted at the start of the test, before their first spawn message.
    for client_id in list(runner.clients):
        _greet(node, client_id)
    # in the runner's own group: it ends when the runner quits
    runner.greenlet.spawn(_watch_lost, node)


def own_address(master_host: str, master_port: int) -> str:
    """This machine's address on its route to the master: the local address of a UDP socket connected toward it (a
    UDP connect sends nothing), else the host name."""
    try:
        family, kind, proto, _name, target = socket.getaddrinfo(master_host, master_port, 0, socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.connect(target)
            return str(s.getsockname()[0])
    except (OSError, IndexError, UnicodeError):
        return socket.gethostname()


def _greet(node: _Node, client_id: str) -> None:
    if client_id not in node.greeted:
        node.greeted.add(client_id)
        node.environment.runner.send_message(HELLO, node.mode, client_id)


def _stop(node: _Node, message: str) -> None:
    if node.stopping:
        return
    node.stopping = True
    logger.error("%s", message)
    node.environment.process_exit_code = 2
    runner = node.environment.runner
    if isinstance(runner, MasterRunner) and runner.state == STATE_INIT:
        gevent.spawn(_end_the_wait, runner)
    else:
        gevent.spawn(runner.quit)


def _end_the_wait(runner) -> None:
    # Locust's main greenlet waits for --expect-workers with no way out but a timeout (forever by default), and the
    # worker that does not match is one of them: stop the workers, then end the wait. Not from the message handler:
    # quit() kills the runner's greenlets, the handler's own among them.
    runner.quit()
    gevent.get_hub().parent.throw(SystemExit(2))


def _on_hello(environment, msg, **_kw) -> None:
    state = _state.of(environment, _Distributed)
    node = state.node
    if node is None:
        state.early_hello = msg
        return
    node.heard_from_master = True
    if msg.data != node.mode:
        environment.runner.send_message(REPLY, node.mode)
        _stop(node, _mismatch(node.mode, msg.data, "the master"))


def _on_reply(environment, msg, **_kw) -> None:
    node = _node_of(environment)
    if node is not None:
        _stop(node, _mismatch(node.mode, msg.data, f"worker {msg.node_id}"))


def on_report_to_master(environment, data: dict) -> None:
    """A worker's report carries its mode and its address."""
    node = _node_of(environment)
    if node is not None:
        data[MODE_KEY] = node.mode
        if node.address is not None:
            data[ADDRESS_KEY] = node.address


def on_test_start(environment) -> None:
    """On the master, before it sends the spawn messages: greets every worker not greeted yet. On a worker, the
    master's first spawn message: a locust-rs master said its mode before it (messages from the master arrive in
    order), so one that did not has no locust-rs."""
    node = _node_of(environment)
    if node is None:
        return
    runner = node.environment.runner
    if isinstance(runner, MasterRunner):
        # Locust clears the master's statistics as a test starts: what a worker reported counts from here.
        node.reported.clear()
        for client_id in list(runner.clients):
            _greet(node, client_id)
    elif not node.heard_from_master:
        _stop(node, _mismatch(node.mode, ABSENT, "the master"))


def on_worker_report(environment, client_id: str, data: dict) -> None:
    node = _node_of(environment)
    if node is None:
        return
    node.last_report[client_id] = time.time()
    address = data.get(ADDRESS_KEY)
    if isinstance(address, str):
        node.addresses[client_id] = address
    total = data.get("stats_total")
    if isinstance(total, dict):
        counts = node.reported.setdefault(client_id, [0, 0])
        counts[0] += int(total.get("num_requests") or 0)
        counts[1] += int(total.get("num_failures") or 0)
    there = data.get(MODE_KEY, ABSENT)
    if there != node.mode:
        _stop(node, _mismatch(node.mode, there, f"worker {client_id}"))


def _watch_lost(node: _Node) -> None:
    """Logs, once per loss, what a worker that went missing took with it."""
    while True:
        gevent.sleep(1.0)
        check_lost(node, time.time())


def check_lost(node: _Node, now: float) -> None:
    """One look at the workers: a worker newly missing is said once; one that is back (Locust's heartbeat saw it
    again) is said too, so that the warning does not stand for the rest of the run and a second loss is said again."""
    clients = {client.id: client for client in node.environment.runner.clients.values()}
    for client_id, client in clients.items():
        if client.state == "missing" and client_id not in node.lost:
            node.lost.add(client_id)
            more = [words for lost, _back in node.lost_listeners if (words := _call(lost, client_id, now))]
            logger.warning("%s", "; ".join([_lost_line(node, client_id, now), *more]))
        elif client.state != "missing" and client_id in node.lost:
            node.lost.discard(client_id)
            for _lost, back in node.lost_listeners:
                _call(back, client_id)
            logger.warning("worker %s is back: the master hears from it again", client_id)


def _call(listener: Callable[..., str | None], *args) -> str | None:
    """A listener's answer; one that fails is logged and does not stop the watch."""
    try:
        return listener(*args)
    except Exception:  # noqa: BLE001 - the watch of lost workers must go on
        logger.exception("a lost-worker listener failed")
        return None


def listen_lost(environment, lost: Callable[[str, float], str | None], back: Callable[[str], None]) -> None:
    """On a master: ``lost(client_id, now)`` is called as a worker goes missing, and what it returns is added to the
    lost-worker line; ``back(client_id)`` when the worker is heard again."""
    node = _node_of(environment)
    if node is not None and isinstance(node.environment.runner, MasterRunner):
        node.lost_listeners.append((lost, back))


def _lost_line(node: _Node, client_id: str, now: float) -> str:
    """Which worker was lost, at which address, what it had reported and what that leaves out."""
    address = node.addresses.get(client_id)
    at = f" at {address}" if address else " (address unknown: none of its reports named it)"
    last = node.last_report.get(client_id)
    if last is None:
        return (
            f"worker {client_id}{at} stopped reporting: it never reported, so the requests it made since it connected "
            "are not in the statistics"
        )
    requests, failures = node.reported.get(client_id, (0, 0))
    return (
        f"worker {client_id}{at} stopped reporting: the requests it made since its last report, {now - last:.1f} s "
        f"ago (workers report every {WORKER_REPORT_INTERVAL:g} s), are not in the statistics, nor any it makes while "
        f"it stays lost; it reported {requests} requests and {failures} failures in all"
    )
