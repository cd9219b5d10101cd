"""hub-test's walls inside the containers: what podman gave a student's container, and
what one student's code, from their own kernel, can do against another student and the
hub while that student runs notebook 2 (every attempt must fail; a runaway allocation
is stopped at the student's memory limit; the other notebook ends with the right outputs)."""

import asyncio
import json
import os
import threading
import time

import nbformat

from mlp_lab.hub import containers as hub_containers
from mlp_lab.notebooks.check import check_notebook
from support import ROOT
from support.hub import solved_cells
from support.kernel_ws import run_notebook
from support.procs import descendants, processes, server_pids

# What one student's code tries against another student and the hub, from inside their
# own kernel: each attempt prints `HELD what: how it failed` or `BREACHED what: what it got`.
ATTACK = r"""
use std::io::Write;
fn report(what: &str, r: Result<String, String>) {
    match r {
        Ok(got) => println!("BREACHED {}: {}", what, got),
        Err(e) => println!("HELD {}: {}", what, e),
    }
}
fn read(p: &str) -> Result<String, String> {
    std::fs::read(p).map(|b| format!("read {} bytes", b.len())).map_err(|e| e.to_string())
}
unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
fn write(p: &str) -> Result<String, String> {
    std::fs::OpenOptions::new().create(true).append(true).open(p)
        .and_then(|mut f| f.write_all(b"overwritten by another student"))
        .map(|_| "wrote into it".to_string()).map_err(|e| e.to_string())
}
for p in [READS] { report(&format!("read {}", p), read(p)); }
for p in [WRITES] { report(&format!("write {}", p), write(p)); }
// every process this kernel can see: none may be the other student's
let mut seen = 0;
let mut theirs = Vec::new();
for entry in std::fs::read_dir("/proc").unwrap().flatten() {
    let name = entry.file_name().to_string_lossy().to_string();
    if !name.chars().all(|c| c.is_ascii_digit()) { continue; }
    seen += 1;
    for part in ["environ", "cmdline"] {
        if let Ok(bytes) = std::fs::read(format!("/proc/{}/{}", name, part)) {
            let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
            if text.contains("OTHER") || text.contains("jupyterhub_cookie_secret") {
                theirs.push(format!("/proc/{}/{}", name, part));
            }
        }
    }
}
report(&format!("read the environment and command line of another student's processes ({} processes visible here)",
               seen),
       if theirs.is_empty() { Err("none of them is another student's or the hub's".into()) }
       else { Ok(theirs.join(" ")) });
let pids: Vec<u32> = vec![PIDS];
for pid in pids {
    let mine = std::fs::read(format!("/proc/{}/environ", pid)).map(|b| !String::from_utf8_lossy(&b).contains("OTHER"));
    let what = format!("send SIGKILL to the other student's kernel (host pid {})", pid);
    match mine {
        Ok(true) => report(&what, Err(format!("pid {} here is one of this student's own processes, left alone", pid))),
        _ => {
            let sent = unsafe { kill(pid as i32, 9) };
            report(&what, if sent == 0 { Ok("signal delivered".into()) }
                          else { Err(format!("kill(2): {}", std::io::Error::last_os_error())) });
        }
    }
}
"""


HOG = r"""
let mut hog: Vec<Vec<u8>> = Vec::new();
for i in 0..400 {
    hog.push(vec![7u8; 64 << 20]);
    if i % 16 == 15 { println!("allocated {} MiB", (i + 1) * 64); }
}
println!("BREACHED allocated {} MiB and was not stopped", hog.len() * 64);
"""


def rust_strings(paths):
    return ", ".join(json.dumps(p) for p in paths)


def container_settings(t, hub, user):
    """What podman gave a student's container: the limits, the one mount, and how the
    server runs (uid, capabilities, no privilege gain), read on the host."""
    info = hub.inspect(user) or {}
    host = info.get("HostConfig", {})
    mem = 3 * 2 ** 30 if os.environ.get("MLP_HUB_MEM", "3G") == "3G" else None
    t.check("%s's container: memory limit %s, no swap past it" % (user, host.get("Memory")),
            host.get("Memory") and host.get("MemorySwap") == host.get("Memory") and (mem is None
                                                                                  or host["Memory"] == mem), host)
    cpus = float(os.environ.get("MLP_HUB_CPUS", "1"))
    t.check("%s's container: CPU limit %.1f core(s)" % (user, cpus),
            host.get("CpuQuota") == int(cpus * host.get("CpuPeriod", 100000)), host)
    t.check("%s's container: process limit %s" % (user, host.get("PidsLimit")), host.get("PidsLimit") == 1024, host)
    mounts = [(m.get("Source"), m.get("Destination")) for m in info.get("Mounts", [])]
    exchange = (os.path.join(hub.state, "exchange", hub_containers.COURSE_ID),
                "%s/%s" % (hub_containers.EXCHANGE, hub_containers.COURSE_ID))
    t.check("%s's container mounts only their home and the course's exchange: %s" % (user, mounts),
            sorted(mounts) == sorted([(os.path.join(hub.state, "homes", user), "/home/jovyan"), exchange]), mounts)
    table = processes()
    status = {}
    for pid in server_pids(table, user)[:1]:
        with open("/proc/%d/status" % pid) as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
    home_uid = os.stat(os.path.join(hub.state, "homes", user)).st_uid
    t.check("%s's server runs as their own uid (their home's, %d, from %d up), no capabilities, no privilege "
            "gain (%s)" % (user, home_uid, hub_containers.UID_BASE, ", ".join(
                "%s %s" % (k, status.get(k, "?").split()[0]) for k in ("Uid", "CapEff", "NoNewPrivs"))),
            status.get("Uid", "").split()[:1] == [str(home_uid)] and home_uid > hub_containers.UID_BASE
            and int(status.get("CapEff", "1"), 16) == 0
            and status.get("NoNewPrivs", "").strip() == "1", status)


def walls_inside(t, hub, tokens):
    """Student A's code, from their kernel, against student B and the hub, while B runs
    notebook 2: every attempt must fail, A's runaway allocation must be stopped at A's
    memory limit, and B's notebook must end with the right outputs."""
    a, b = sorted(tokens)[:2]
    home_b = os.path.join(hub.state, "homes", b)
    nb_b = os.path.join(home_b, "mlp", "02_toy_network.ipynb")
    secret = os.path.join(hub.state, "jupyterhub_cookie_secret")
    database = os.path.join(hub.state, "jupyterhub.sqlite")
    t.check("the files attacked are there on the host (%s's notebook, the hub's secret and database)" % b,
            all(os.path.exists(p) for p in (nb_b, secret, database)), [nb_b, secret, database])
    before = open(nb_b, "rb").read()
    guesses = ["../%s/mlp/02_toy_network.ipynb" % b, "/home/%s/mlp/02_toy_network.ipynb" % b,
               "/home/jovyan/../%s/mlp/02_toy_network.ipynb" % b, "/proc/1/root" + nb_b,
               "/srv/jupyterhub/jupyterhub_cookie_secret", os.path.join(ROOT, "deploy", "state", "homes", b)]
    reads = [nb_b, secret, database] + guesses
    writes = [nb_b, os.path.join(home_b, "mlp", "planted.txt"), "../%s/mlp/02_toy_network.ipynb" % b,
              os.path.join(hub.state, "jupyterhub_cookie_secret")]
    victim = solved_cells()
    errors, timings = {}, {a: {}, b: {}}

    def run(user, nb):
        try:
            asyncio.run(run_notebook(hub.base, user, tokens[user], nb, timings[user]))
        except Exception as e:
            errors[user] = repr(e)

    victim_thread = threading.Thread(target=run, args=(b, victim))
    victim_thread.start()
    for _ in range(600):  # B's kernel is at work before A starts
        if "first_cell" in timings[b] or not victim_thread.is_alive():
            break
        time.sleep(0.2)
    table = processes()
    kernels_b = [pid for server in server_pids(table, b) for pid in descendants(table, server)
                 if "evcxr" in table[pid][3]]
    t.check("%s's kernel is running (host pids %s)" % (b, kernels_b), bool(kernels_b), kernels_b)
    code = (ATTACK.replace("READS", rust_strings(reads)).replace("WRITES", rust_strings(writes))
            .replace("PIDS", ", ".join(str(p) for p in kernels_b[:3]))
            .replace("OTHER", "JUPYTERHUB_USER=%s" % b))
    attacker = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code), nbformat.v4.new_code_cell(HOG),
                                               nbformat.v4.new_code_cell('println!("still here");')])
    run(a, attacker)
    victim_thread.join()
    t.check("%s's attack cells ran (%s)" % (a, errors.get(a, "ok")), a not in errors, errors.get(a))

    def text(cell):
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    lines = [line for line in text(attacker.cells[0]).splitlines() if line.startswith(("HELD", "BREACHED"))]
    print("  inside %s's container, against %s and the hub:" % (a, b))
    for line in lines:
        t.check("  " + line, line.startswith("HELD"), line)
    t.check("every attempt reported (%d)" % len(lines), len(lines) == len(reads) + len(writes) + 1 + len(kernels_b[:3]),
            text(attacker.cells[0])[-2000:])
    hog = attacker.cells[1].outputs
    hog_text = text(attacker.cells[1]) + "".join(" ".join(o.get("traceback", [])) + o.get("evalue", "")
                                                  for o in hog if o.output_type == "error")
    allocated = [line for line in text(attacker.cells[1]).splitlines() if line.startswith("allocated")]
    t.check("%s's runaway allocation was stopped at the memory limit (%s; then: %s)"
            % (a, allocated[-1] if allocated else "nothing printed",
               next((o.get("evalue", "")[:80] for o in hog if o.output_type == "error"), "no error")),
            "BREACHED" not in hog_text and any(o.output_type == "error" for o in hog), hog_text[-1500:])
    t.check("%s's kernel answers again after that" % a, "still here" in text(attacker.cells[2]),
            attacker.cells[2].outputs)
    t.check("%s's notebook 2 ran to the end meanwhile" % b, b not in errors, errors.get(b))
    if b not in errors:
        check_notebook(lambda ok, what: t.check("%s, meanwhile: %s" % (b, what), ok), "02_toy_network", victim)
    t.check("%s's notebook on the host is unchanged" % b, open(nb_b, "rb").read() == before)
    t.check("nothing was planted in %s's home" % b, not os.path.exists(os.path.join(home_b, "mlp", "planted.txt")))

