"""Child processes (started in their own sessions so a whole tree can be killed), and the /proc
readings the comparison is built on: CPU time of a process tree and its resident memory.

CPU: /proc/PID/stat of the process counts every thread, live or already exited, including the
kernel's io_uring helper threads (iou-wrk-* io-wq workers, iou-sqp-* SQPOLL threads), which are
tasks of the process. /proc/PID/task/*/stat is summed as well to show what live threads hold.
"""

import os
import signal
import socket
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
_children = []  # every Popen we started, for the exit-time sweep
_lock = threading.Lock()


class Child:
    def __init__(self, name, argv, log_path, cpus=None, env=None):
        self.name = name
        self.argv = list(argv)
        if cpus is not None:
            self.argv = ["taskset", "-c", cpus] + self.argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        # New session: the proxy and everything it forks share a process group we can kill.
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env)
        with _lock:
            _children.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def exit_status(self):
        rc = self.proc.poll()
        if rc is None:
            return None
        return f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}"

    def stop(self, grace=3.0):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        try:  # the group may outlive its leader (e.g. nginx workers)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()
        with _lock:
            if self in _children:
                _children.remove(self)

    def log_tail(self, lines=8):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()[-8192:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(data.strip().splitlines()[-lines:])


def kill_all():
    with _lock:
        kids = list(_children)
    for c in kids:
        try:
            c.stop(grace=1.0)
        except Exception:
            pass


def descendants(pid):
    """pid and all its descendants (nginx master + workers)."""
    out = [pid]
    i = 0
    while i < len(out):
        p = out[i]
        i += 1
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    out.extend(int(x) for x in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out


def _stat_fields(path):
    with open(path) as f:
        data = f.read()
    comm = data[data.index("(") + 1:data.rindex(")")]
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); utime = field 14, stime = field 15
    return comm, int(rest[11]), int(rest[12])


def tree_cpu(pid):
    """Returns (ticks of the whole tree incl. exited threads, ticks of live tasks, pids, task names)."""
    total = 0
    live = 0
    names = []
    pids = descendants(pid)
    for p in pids:
        try:
            _, u, s = _stat_fields(f"/proc/{p}/stat")
            total += u + s
            for tid in os.listdir(f"/proc/{p}/task"):
                try:
                    comm, tu, ts = _stat_fields(f"/proc/{p}/task/{tid}/stat")
                except (FileNotFoundError, ProcessLookupError):
                    continue
                live += tu + ts
                names.append(comm)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total, live, pids, names


def box_ticks():
    """(busy, steal, total) ticks of the whole machine from the 'cpu' line of /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return user + nice + system + irq + softirq, steal, sum(v)


def own_cpu_ticks():
    """CPU of this script and of its reaped children (wrk), in ticks."""
    import resource
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime) * CLK_TCK


def ticks_to_us(ticks):
    return ticks * 1e6 / CLK_TCK


def tree_rss_kib(pid):
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def count_pipes(pid):
    """Pipe fds held by the tree: a proxy that splices keeps a pool of pipes."""
    n = 0
    for p in descendants(pid):
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    if os.readlink(f"/proc/{p}/fd/{fd}").startswith("pipe:"):
                        n += 1
                except OSError:
                    continue
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return n


def affinity_report(pid):
    """{'comm': 'cpus'} for every task in the tree, to check pinning held."""
    out = {}
    for p in descendants(pid):
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                comm = None
                cpus = None
                with open(f"/proc/{p}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith("Name:"):
                            comm = line.split(None, 1)[1].strip()
                        elif line.startswith("Cpus_allowed_list:"):
                            cpus = line.split(None, 1)[1].strip()
                out.setdefault(cpus, set()).add(comm)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return {k: sorted(v) for k, v in out.items()}


class TaskSampler:
    """Polls the task list while a run is going, to catch short-lived io-wq workers by name."""

    def __init__(self, pid, period=0.25):
        self.pid = pid
        self.period = period
        self.names = {}  # name prefix -> max simultaneous count
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            counts = {}
            for p in descendants(self.pid):
                try:
                    for tid in os.listdir(f"/proc/{p}/task"):
                        try:
                            with open(f"/proc/{p}/task/{tid}/comm") as f:
                                comm = f.read().strip()
                        except (FileNotFoundError, ProcessLookupError):
                            continue
                        key = comm.rstrip("0123456789") + ("*" if comm[-1:].isdigit() else "")
                        counts[key] = counts.get(key, 0) + 1
                except (FileNotFoundError, ProcessLookupError):
                    continue
            for k, v in counts.items():
                self.names[k] = max(self.names.get(k, 0), v)
            self._stop.wait(self.period)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, child, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False
