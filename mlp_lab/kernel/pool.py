"""The warm pool: evcxr started and warmed before anyone asks (`--pool`).

A kernel's first cells are evcxr's start, the notebook's `:dep` lines, and rust-analyzer
(evcxr types every variable with it), which reads the standard library and every
dependency: several seconds of one core, done on a thread of evcxr's own once the `:dep`
has run (evcxr/README.md). `--pool N` keeps N evcxr processes that have run the `:dep`
lines (their analysis loads on by itself), in slots of their own, each listed in
<kernel home>/pool/ready/. A new kernel's relay
claims one by renaming its entry into pool/claimed/ (atomic: one relay wins), and
passes messages to it, signed with the pool's key; with none ready it starts its own
evcxr as before. The pool warms one replacement at a time.
"""

import json
import os
import signal
import subprocess
import time
import uuid

from .home import EVCXR, evcxr_env, kernel_home, prepare_home, take_slot, template_stamp, write_if_changed
from .launch import alive, is_evcxr, keep_lock, launch_evcxr, restore_lock


def pool_dir(home, part):
    path = os.path.join(home, "pool", part)
    os.makedirs(path, exist_ok=True)
    return path


def read_json(path):
    """A pool entry, or None when it is gone or half written."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ready_kernels(home):
    """[(entry file, entry)] of the warm kernels not claimed yet."""
    folder = pool_dir(home, "ready")
    entries = [(os.path.join(folder, name), read_json(os.path.join(folder, name)))
               for name in sorted(os.listdir(folder)) if name.endswith(".json")]
    return [(path, entry) for path, entry in entries if entry]


def claimed_kernels(home):
    """[(claim file, relay pid, entry)] of the warm kernels relays have claimed (the
    claim is named <slot>.<relay pid>)."""
    folder = pool_dir(home, "claimed")
    out = []
    for name in os.listdir(folder):
        relay = name.rpartition(".")[2]
        entry = read_json(os.path.join(folder, name))
        if relay.isdigit() and entry:
            out.append((os.path.join(folder, name), int(relay), entry))
    return out


def warming_kernels(home):
    """How many kernels a live pool is warming now."""
    folder = pool_dir(home, "warming")
    pids = [read_json(os.path.join(folder, name)) for name in os.listdir(folder)]
    return sum(1 for pid in pids if isinstance(pid, int) and alive(pid))


def claim_warm(home, wait=0):
    """A warm evcxr of the pool, now this relay's: (entry, claim file), or None. With
    none ready but one being warmed, waits up to `wait` seconds for it (it is further on
    than a cold start would be)."""
    end = time.time() + wait
    while True:
        warm = claim_ready(home)
        if warm or time.time() > end or not warming_kernels(home):
            return warm
        time.sleep(0.2)


def claim_ready(home):
    claimed = pool_dir(home, "claimed")
    for path, _ in ready_kernels(home):
        claim = os.path.join(claimed, "%s.%d" % (os.path.basename(path)[:-5], os.getpid()))
        try:
            os.rename(path, claim)  # only one relay can
        except OSError:
            continue
        entry = read_json(claim) or {}
        if alive(entry.get("pid", 0)) and is_evcxr(entry["pid"]):
            return entry, claim
        os.unlink(claim)  # a pool that was killed left it
    return None


def dep_lines(nb):
    """The `:dep` lines of a notebook's (a dict's or nbformat's) first code cell: what the
    pool's kernels run for that edition."""
    first = next(cell for cell in nb["cells"] if cell["cell_type"] == "code")
    source = first["source"] if isinstance(first["source"], str) else "".join(first["source"])
    return [line for line in source.splitlines() if line.startswith(":dep ")]


def warm_one(home, deps, cwd):
    """One evcxr, started and warmed: the dependency lines run (rust-analyzer's load
    follows in evcxr's background). Returns (process, entry) or None."""
    fd, work = take_slot(home)
    slot = os.path.dirname(work)
    warming = os.path.join(pool_dir(home, "warming"), os.path.basename(slot))
    write_if_changed(warming, str(os.getpid()))
    try:
        return warm_in_slot(home, deps, cwd, fd, work)
    finally:
        os.unlink(warming)


def in_child(function, *args):
    """function(*args) in a forked child, its JSON result back: the pool's own process, which
    stays for the life of a student's container as the parent of its evcxr, never holds
    jupyter_client's modules (15 MB)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the pool's loop
        try:
            os.close(read)
            try:
                result = function(*args)
            except Exception as e:  # reported by the parent
                result = {"error": "%s: %s" % (type(e).__name__, e)}
            with os.fdopen(write, "w") as f:
                json.dump(result, f)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        text = f.read()
    os.waitpid(pid, 0)
    try:
        return json.loads(text)
    except ValueError:
        return {"error": "the warm-up process ended without a word"}


def run_deps(connection, work, deps):
    """Waits for evcxr on `connection` and runs the dependency lines: {"count": its
    execution count}."""
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient(connection_file=connection)
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=300)
        restore_lock(work)  # evcxr's start emptied it (launch.keep_lock)
        count = 1
        for dep in deps:
            reply = kc.execute_interactive(dep, timeout=1800, output_hook=lambda m: None)
            if reply["content"]["status"] != "ok":
                raise RuntimeError("%s: %s" % (dep, reply["content"].get("evalue")))
            count = reply["content"]["execution_count"]
        return {"count": count}
    finally:
        kc.stop_channels()


def warm_in_slot(home, deps, cwd, fd, work):
    slot = os.path.dirname(work)
    env = {k: v for k, v in evcxr_env(home, work).items()
           if not k.startswith(("JUPYTERHUB_", "JPY_", "MLP_HUB_"))}
    key = uuid.uuid4().hex
    connection = os.path.join(slot, "evcxr-connection.json")
    keep_lock(work)
    with open(os.path.join(slot, "evcxr.log"), "wb") as log:
        proc, _ = launch_evcxr(connection, key, "hmac-sha256", [EVCXR], env=env, cwd=cwd, stdout=log,
                               stderr=subprocess.STDOUT, pass_fds=(fd,), start_new_session=True)
    os.close(fd)  # evcxr holds the slot's lock now
    outcome = in_child(run_deps, connection, work, deps)
    if "error" in outcome:
        print("pool: a kernel did not warm up (%s); see %s" % (outcome["error"], os.path.join(slot, "evcxr.log")),
              flush=True)
        proc.kill()
        proc.wait()
        return None
    count = outcome["count"]
    entry = {"pid": proc.pid, "connection": connection, "key": key, "signature_scheme": "hmac-sha256",
             "work": work, "cwd": cwd, "count": count, "deps": deps, "template": template_stamp(home)}
    path = os.path.join(pool_dir(home, "ready"), os.path.basename(slot) + ".json")
    write_if_changed(path, json.dumps(entry))
    return proc, entry


def pool(size, deps, cwd, refill=True):
    """Keep `size` warm kernels ready until stopped (SIGTERM); their evcxr processes end
    with the pool (PR_SET_PDEATHSIG), claimed ones too. Without `refill`, only the first
    `size` are warmed (a student's container: a replacement would double its memory and
    take its core while the student works)."""
    home = kernel_home()
    prepare_home(home)
    ready, claimed = pool_dir(home, "ready"), pool_dir(home, "claimed")
    for folder in (ready, claimed, pool_dir(home, "warming")):  # a previous pool's entries: its processes are gone
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
    procs = {}
    warmed_total = 0
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    print("pool: keeping %d warm kernel(s) in %s" % (size, ready), flush=True)
    while not stopping:
        for pid, proc in list(procs.items()):
            if proc.poll() is not None:
                del procs[pid]
        for path, relay, entry in claimed_kernels(home):  # a relay killed outright leaves its evcxr
            if not alive(relay):
                if alive(entry["pid"]):
                    os.kill(entry["pid"], signal.SIGTERM)
                else:
                    os.unlink(path)
        stamp = template_stamp(home)
        entries = []
        for path, entry in ready_kernels(home):
            if alive(entry["pid"]) and entry["template"] == stamp:
                entries.append(entry)
                continue
            try:  # dead, or warmed before the template was rebuilt: taken out of the list first
                os.rename(path, path + ".stale")
            except OSError:
                continue  # a relay claimed it in the meantime
            try:
                os.kill(entry["pid"], signal.SIGTERM)
            except OSError:
                pass
            os.unlink(path + ".stale")
        if len(entries) < size and (refill or warmed_total < size):
            start = time.time()
            warmed = warm_one(home, deps, cwd)
            if warmed:
                warmed_total += 1
                procs[warmed[0].pid] = warmed[0]
                print("pool: a kernel warmed in %.1f s (%d of %d ready)" % (time.time() - start, len(entries) + 1,
                                                                            size), flush=True)
            else:
                time.sleep(10)
        else:
            time.sleep(0.5)
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    for name in os.listdir(ready):
        os.unlink(os.path.join(ready, name))
