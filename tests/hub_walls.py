"""hub-test's walls inside the containers: what podman gave a student's container, and
what one student's code, from their own kernel, can do against another student and the
hub while that student runs notebook 2 (every attempt must fail; a runaway allocation
is stopped at the student's memory limit; the other notebook ends with the right outputs)."""

import asyncio
import json
import os
import re
import subprocess
import threading
import time

import nbformat

from mlp_lab.hub import containers as hub_containers
from mlp_lab.hub import disks
from mlp_lab.notebooks.outputs_check import check_notebook
from support import ROOT, until
from support.hub import contents, solved_cells
from support.kernel_ws import run_cell, run_notebook
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


# Filling the disks a student's code can write to: each past its bound (BIG bytes, a GiB
# more than MLP_HUB_DISK), first reserved at once (posix_fallocate), then written; the file
# goes again after each attempt.
FILL = r"""
unsafe extern "C" {
    fn posix_fallocate(fd: i32, offset: i64, len: i64) -> i32;
}
fn fill(what: &str, path: &str, big: i64) {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let mut f = match std::fs::File::create(path) {
        Ok(f) => f,
        Err(e) => { println!("HELD {}: {}", what, e); return; }
    };
    let reserved = unsafe { posix_fallocate(f.as_raw_fd(), 0, big) };
    if reserved == 0 {
        println!("BREACHED {}: reserved {} MiB", what, big >> 20);
    } else {
        let chunk = vec![1u8; 64 << 20];
        let mut n: i64 = 0;
        let stopped = loop {
            if n > big { break None; }
            match f.write_all(&chunk) { Ok(_) => n += chunk.len() as i64, Err(e) => break Some(e) }
        };
        match stopped {
            Some(e) => println!("HELD {}: reserving {} MiB: {}; writing stopped after {} MiB: {}", what, big >> 20,
                                std::io::Error::from_raw_os_error(reserved), n >> 20, e),
            None => println!("BREACHED {}: wrote {} MiB", what, n >> 20),
        }
    }
    drop(f);
    let _ = std::fs::remove_file(path);
}
for (what, path) in [("fill their home past its disk", "/home/jovyan/fill.bin"), ("fill /tmp", "/tmp/fill.bin"),
                     ("fill /var/tmp", "/var/tmp/fill.bin"), ("write into the image", "/opt/mlp-kernels/fill.bin")] {
    fill(what, path, BIG);
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
    t.check("%s's container: its root filesystem read-only, tmpfs %s" % (user, sorted(host.get("Tmpfs") or {})),
            host.get("ReadonlyRootfs") is True and "/tmp" in (host.get("Tmpfs") or {}), host)
    mounts = [(m.get("Source"), m.get("Destination"), "rw" if m.get("RW") else "ro") for m in info.get("Mounts", [])]
    course = "%s/%s" % (hub_containers.EXCHANGE, hub_containers.COURSE_ID)
    want = [(os.path.join(hub.state, "homes", user), "/home/jovyan", "rw"),
            (os.path.join(hub.state, "exchange", hub_containers.COURSE_ID), course, "ro"),
            (disks.inbound_dir(hub.state, user), course + "/inbound", "rw")]
    t.check("%s's container mounts only their home, the course's exchange (read-only) and their own inbound: %s"
            % (user, mounts), sorted(mounts) == sorted(want), mounts)
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
    fill = FILL.replace("BIG", str(disk_bytes() + 2**30))
    attacker = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code), nbformat.v4.new_code_cell(HOG),
                                               nbformat.v4.new_code_cell('println!("still here");'),
                                               nbformat.v4.new_code_cell(fill)])
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
    filled = [line for line in text(attacker.cells[3]).splitlines() if line.startswith(("HELD", "BREACHED"))]
    print("  %s fills what they can write (bound: MLP_HUB_DISK %s):" % (a, disks.size()))
    for line in filled:
        t.check("  " + line, line.startswith("HELD"), line)
    t.check("every disk attempt reported (%d)" % len(filled), len(filled) == 4, text(attacker.cells[3])[-1500:])
    status, _ = contents(hub, b, tokens[b], "mlp/saved-after-the-fill.txt",
                         {"type": "file", "format": "text", "content": "still saving"})
    t.check("%s saves a file in their home after %s filled theirs (%s)" % (b, a, status),
            status in (200, 201) and os.path.exists(os.path.join(home_b, "mlp", "saved-after-the-fill.txt")), status)
    t.check("%s's notebook on the host is unchanged" % b, open(nb_b, "rb").read() == before)
    t.check("nothing was planted in %s's home" % b, not os.path.exists(os.path.join(home_b, "mlp", "planted.txt")))



def listening(t, hub):
    """The hub's listening sockets (the hub, its proxy, its services, podman's API), read
    with `ss -ltnp`: none on every address (0.0.0.0, ::, *) unless MLP_HUB_IP asks. No
    traffic is sent to this machine's external address."""
    table = processes()
    ours = {hub.proc.pid} | set(descendants(table, hub.proc.pid))
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    sockets = []
    for line in out.splitlines():
        fields = line.split()
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if len(fields) >= 4 and pids & ours:
            names = sorted(set(re.findall(r'\(\("([^"]+)"', line)))
            sockets.append((fields[3], ",".join(names)))
    print("  the hub's listening sockets: %s" % ", ".join("%s (%s)" % s for s in sockets))
    wide = [s for s in sockets if s[0].rsplit(":", 1)[0] in ("0.0.0.0", "*", "[::]", "::")]
    asked = os.environ.get("MLP_HUB_IP", "127.0.0.1") in ("0.0.0.0", "::", "")
    t.check("the hub listens on %d sockets, none on every address (ss -ltnp)" % len(sockets),
            sockets and (asked or not wide), sockets)


PLANT = r"""
for (path, text) in [
    ("/home/jovyan/.jupyter/jupyter_server_config.py",
     "import os\nopen(os.path.expanduser('~/user-config-ran.txt'), 'w').write('config')\n"),
    ("/home/jovyan/.local/lib/python3.11/site-packages/mlp_planted.pth",
     "import os; open(os.path.expanduser('~/user-config-ran.txt'), 'w').write('pth')\n"),
] {
    std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    println!("planted {}", path);
}
"""


def user_config(t, hub, user, token):
    """A student's own ~/.jupyter/jupyter_server_config.py and a .pth file in their user
    site-packages, written from their kernel: their server, started again, runs neither
    (Spawner.disable_user_config, PYTHONNOUSERSITE)."""
    said = run_cell(hub.base, user, token, PLANT)
    t.check("%s plants a server configuration and a .pth file from their kernel" % user,
            len([line for line in said.splitlines() if line.startswith("planted ")]) == 2, said[-1000:])
    hub.call("/users/%s/server" % user, "DELETE")
    until(lambda: not (hub.call("/users/%s" % user)[1] or {}).get("servers"), 60)
    hub.start_server(user)
    ran = os.path.exists(os.path.join(hub.state, "homes", user, "user-config-ran.txt"))
    print("  %s's server started again with ~/.jupyter/jupyter_server_config.py and a .pth in their site-packages: "
          "%s" % (user, "BREACHED: ran" if ran else "HELD: neither ran"))
    t.check("%s's own server configuration and user site-packages are not run by their server" % user, not ran)


# From a student's kernel: the problem set's answers anywhere in the course image
ANSWERS = r"""
for path in ["/opt/mlp-lab/mlp-core/src/model.rs", "/opt/mlp-lab/mlp-core/src/train.rs",
             "/opt/mlp-lab/mlp-core/src/gradcheck.rs"] {
    match std::fs::read_to_string(path) {
        Ok(text) if text.contains("fn forward(") || text.contains("impl Learner for Trainer")
            || text.contains("fn backward")
            => println!("BREACHED {}: it holds the answers", path),
        Ok(text) => println!("HELD {}: {} lines, no answer in them", path, text.lines().count()),
        Err(e) => println!("HELD {}: {}", path, e),
    }
}
for path in ["/opt/mlp-lab/mlp-core/src/engine", "/opt/mlp-lab/mlp_lab/bench/reference.py", "/opt/mlp-lab/notebooks"] {
    match std::fs::metadata(path) {
        Ok(_) => println!("BREACHED {}: it is there", path),
        Err(e) => println!("HELD {}: {}", path, e),
    }
}
// the compiled library in the kernels' template: an answer's name in any of its files
let mut stack = vec![std::path::PathBuf::from("/opt/mlp-kernels/slots/template/work/target")];
let (mut files, mut found) = (0, Vec::new());
while let Some(dir) = stack.pop() {
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { stack.push(path); continue; }
        files += 1;
        if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(11).any(|w| w == b"sparse_form") { found.push(path.display().to_string()); }
        }
    }
}
if found.is_empty() { println!("HELD the compiled template ({} files): no answer's name in them", files); }
else { println!("BREACHED the compiled template: {}", found.join(" ")); }
"""


def no_answers(t, hub, user, token):
    """The course image holds no answer a student's code could read: mlp-core's source
    without its `solutions` items and engine, no numpy reference, no solved notebooks, and
    no compiled answer in the kernels' template (mlp_lab/course/student_source.py)."""
    said = run_cell(hub.base, user, token, ANSWERS)
    lines = [line for line in said.splitlines() if line.startswith(("HELD", "BREACHED"))]
    print("  from %s's kernel, the answers in the course image:" % user)
    for line in lines:
        t.check("  " + line, line.startswith("HELD"), line)
    t.check("every place of an answer was looked at (%d)" % len(lines), len(lines) == 7, said[-1500:])


def disk_bytes():
    """MLP_HUB_DISK in bytes (2G by default)."""
    value = disks.size() or "0"
    return int(float(value.rstrip("KMGTkmgt") or 0) * 1024 ** ("KMGT".index(value[-1].upper()) + 1
                                                               if value[-1].upper() in "KMGT" else 0))
