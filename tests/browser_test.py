"""`make browser-test`: the notebooks in JupyterLab under headless Chromium, as a student uses them.

JupyterLab is started as `make lab` starts it (127.0.0.1, a token), on a free port, over
a copy of the notebooks in target/browser/work/ (so that the autosave never writes
outputs into notebooks/). Playwright for Python drives Debian's Chromium:

- the wrong token and no token are refused;
- each notebook is opened, run with Run > Run All Cells, and waited on until the kernel
  is idle and every code cell has run; then: no error output and nothing on stderr, every
  output image decoded (naturalWidth > 0), formulas typeset by MathJax (elements present,
  no MathJax error);
- notebook 3's training cells show training live: the figure changes at least three times
  while a cell trains, and the last one shown is the finished run's (its line says the
  last epoch, done, with the numbers the log's last epoch line prints); screenshots of the
  sigmoid cell at three moments (live-1-early.png, live-2-middle.png, live-3-done.png);
- two notebooks are opened in two tabs and run at once, both checked the same way;
- the .html exports in target/notebooks/ (from `make notebooks`) are opened with the
  network off: formulas typeset by the local MathJax, figures decoded, no request left
  the machine.

Screenshots go to target/browser/. Closes with 'browser: N passed, N failed'.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

from mlp_lab.tally import Checks
from support import ROOT, VENV_BIN, until
from support.http import free_port, status_of
from support.jupyterlab import RUN_TIMEOUT, inspect, launch, run_all, shot, wait_done, wait_idle

OUT = os.path.join(ROOT, "target", "browser")
WORK = os.path.join(OUT, "work")
TOKEN = "browser-test-%d" % os.getpid()


def start_lab(port):
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    for nb in glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")):
        shutil.copy(nb, WORK)
    # the notebooks find ../mlp-core
    os.symlink(os.path.join(ROOT, "mlp-core"), os.path.join(OUT, "mlp-core"))
    log = open(os.path.join(OUT, "jupyterlab.log"), "w")
    cmd = [os.path.join(VENV_BIN, "jupyter"), "lab", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port=%d" % port, "--ServerApp.open_browser=False", "--IdentityProvider.token=" + TOKEN,
           "--ServerApp.root_dir=" + WORK,
           "--ServerApp.jpserver_extensions={'nbgrader.server_extensions.formgrader': False, "
           "'nbgrader.server_extensions.course_list': False, 'nbgrader.server_extensions.assignment_list': False}"]
    if os.getuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=WORK)
    base = "http://127.0.0.1:%d" % port
    if until(lambda: urllib.request.urlopen(base + "/api/status?token=" + TOKEN, timeout=2), 60):
        return proc, base
    proc.terminate()
    raise SystemExit("JupyterLab did not start; see target/browser/jupyterlab.log")


def check_tokens(t, base):
    t.check("the right token gets the API", status_of(base + "/api/kernels?token=" + TOKEN) == 200)
    t.check("a wrong token is refused (403)", status_of(base + "/api/kernels?token=wrong") == 403,
            status_of(base + "/api/kernels?token=wrong"))
    t.check("no token is refused (403)", status_of(base + "/api/kernels") == 403, status_of(base + "/api/kernels"))
    # the page itself sends a browser without a token to the login form
    page = urllib.request.urlopen(base + "/lab", timeout=5)
    t.check("the lab page without a token asks for one", "/login" in page.url, page.url)


def open_notebook(context, base, name):
    page = context.new_page()
    page.set_viewport_size({"width": 1400, "height": 1000})
    # a workspace of its own (and reset), so the page shows this notebook alone
    page.goto("%s/lab/workspaces/%s/tree/%s?reset&token=%s" % (base, name.replace(".", "-"), name, TOKEN))
    wait_idle(page)
    return page


# what each training cell's live display shows now: (cell index, the figure's image, the
# line under it); the line is the output whose text starts "Epoch k/n · "
LIVE_JS = """() => {
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    const shown = [];
    panel.querySelectorAll('.jp-CodeCell').forEach((cell, i) => {
        // (textContent: innerText is empty in cells JupyterLab has not rendered, off screen)
        const texts = [...cell.querySelectorAll(".jp-OutputArea-output")].map(o => o.textContent.trim());
        const line = texts.find(t => /^Epoch \\d+\\/\\d+ · /.test(t));
        if (!line) return;
        const img = cell.querySelector('.jp-OutputArea-output img');
        const log = texts.filter(t => /^Epoch \\d+: /m.test(t)).join('\\n');
        shown.push({cell: i, line, log, src: img && img.naturalWidth > 0 ? img.src : null});
    });
    return shown;
}"""

DONE_JS = """() => {
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    const s = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
    const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent);
    return s && s.getAttribute('data-status') === 'idle' && prompts.length > 0
        && prompts.every(p => /\\[\\d+\\]/.test(p));
}"""


STATE_JS = """() => document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator')
    .getAttribute('data-status')"""


def watch_live(t, page, timeout=RUN_TIMEOUT):
    """Run All's run of notebook 3, watched: every figure each training cell shows, in
    order; screenshots of the first training cell early, in the middle and at the end."""
    figures = {}  # cell -> [(image, line)] each time its figure changed
    start, moments = time.time(), []
    states = []  # the kernel's state as the toolbar shows it, at each figure before the last

    def show(cell, name):
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").nth(cell) \
            .locator(".jp-OutputArea-output img").first.scroll_into_view_if_needed()
        shot(page, OUT, name)
        moments.append(name)

    while not page.evaluate(DONE_JS):
        if time.time() - start > timeout:
            shot(page, OUT, "03_mnist-timeout")
            raise TimeoutError("notebook 3 did not finish in %d s" % timeout)
        for d in page.evaluate(LIVE_JS):
            seen = figures.setdefault(d["cell"], [])
            if d["src"] and (not seen or seen[-1][0] != d["src"]):
                seen.append((d["src"], d["line"]))
                if "(done" not in d["line"]:
                    states.append(page.evaluate(STATE_JS))
                first = min(figures)
                if d["cell"] == first and len(seen) == 1:
                    show(first, "live-1-early")
                elif d["cell"] == first and "live-2-middle" not in moments and d["line"].startswith("Epoch 10/"):
                    show(first, "live-2-middle")
        time.sleep(0.2)
    final = {d["cell"]: d for d in page.evaluate(LIVE_JS)}
    if figures:
        show(min(figures), "live-3-done")
    t.check("notebook 3: the kernel shows busy while a cell trains (at %d of %d redraws)"
            % (states.count("busy"), len(states)), states and all(x == "busy" for x in states), states)
    t.check("notebook 3: two training cells show training live", len(figures) == 2 and len(final) == 2,
            sorted(figures))
    for cell, seen in sorted(figures.items()):
        end = final.get(cell, {})
        t.check("notebook 3 cell %d: the figure changed at least 3 times while training (%d)" % (cell, len(seen)),
                len(seen) >= 4, [line for _, line in seen])
        # the last epoch line of the log, e.g. "Epoch 20: loss 1.876564, train_acc 0.910000, val_acc 0.866400",
        # and the live line, e.g. "Epoch 20/20 · loss 1.8766 · train_acc 0.910 · val_acc 0.866 · 17.6 s (done;
        # drawing took 0.31 s)"
        number = r"([0-9.]+)"
        log = re.findall(r"^Epoch (\d+): loss %s, train_acc %s, val_acc %s$" % (number, number, number),
                         end.get("log", ""), re.M)
        live = re.match(r"Epoch (\d+)/(\d+) · loss %s · train_acc %s · val_acc %s · .*\(done; .*\)$"
                        % (number, number, number), end.get("line", ""))
        same = bool(log and live) and live.group(1) == live.group(2) == log[-1][0] and all(
            abs(float(a) - float(b)) <= tol for a, b, tol in zip(live.groups()[2:], log[-1][1:], (1e-4, 1e-3, 1e-3),
                                                                 strict=True))
        t.check("notebook 3 cell %d: the last figure is the finished run's: %r" % (cell, end.get("line")),
                same and seen[-1][0] == end.get("src"), (log[-1:], end.get("line")))
    print("  notebook 3 live: %s figures; screenshots %s"
          % ([len(v) for _, v in sorted(figures.items())], ", ".join(moments)), flush=True)


def check_notebook(t, name, info, formulas=True):
    t.check("%s: %d code cells, all run" % (name, info["cells"]),
            info["cells"] > 0 and all(re.fullmatch(r"\[\d+\]:", p) for p in info["prompts"]), info["prompts"])
    t.check("%s: no error output" % name, not info["errors"], info["errors"])
    t.check("%s: nothing on stderr" % name, not info["stderr"], info["stderr"])
    t.check("%s: no code line runs off its cell's edge" % name, info["clipped"] == 0, info["clipped"])
    t.check("%s: every image decoded (%d)" % (name, len(info["images"])),
            all(done and width > 0 for done, width in info["images"]), info["images"])
    if formulas:
        t.check("%s: formulas typeset (%d), no MathJax error" % (name, info["math"]),
                info["math"] > 0 and info["mathErrors"] == 0, info)


def check_html(t, browser):
    """The .html exports with the network off: local MathJax, embedded figures."""
    exports = sorted(glob.glob(os.path.join(ROOT, "target", "notebooks", "*.html")))
    t.check("make notebooks' .html exports are there (%d)" % len(exports), len(exports) == 4, exports)
    context = browser.new_context(offline=True)
    remote = []
    context.route(re.compile(r"^https?://"), lambda route: (remote.append(route.request.url), route.abort()))
    for path in exports:
        name = os.path.basename(path)
        page = context.new_page()
        page.set_viewport_size({"width": 1200, "height": 900})
        page.goto("file://" + path)
        try:
            page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 "
                                   "&& document.querySelectorAll('.MathJax_CHTML, mjx-container').length > 0",
                                   timeout=60000)
        except Exception as e:  # reported below
            print("  (%s: %s)" % (name, str(e).splitlines()[0]))
        info = page.evaluate("""() => ({
            math: document.querySelectorAll('.MathJax_CHTML, mjx-container').length,
            mathErrors: document.querySelectorAll('.MathJax_Error, mjx-merror').length,
            images: [...document.querySelectorAll('img')].map(i => [i.complete, i.naturalWidth]),
        })""")
        t.check("%s offline: formulas typeset (%d), no MathJax error" % (name, info["math"]),
                info["math"] > 0 and info["mathErrors"] == 0, info)
        t.check("%s offline: every figure decoded (%d)" % (name, len(info["images"])),
                all(done and w > 0 for done, w in info["images"]), info["images"])
        shot(page, OUT, "html-" + name.replace(".html", ""))
        page.close()
    t.check("the exports asked the network for nothing", not remote, remote)
    context.close()


def main():
    t = Checks()
    os.makedirs(OUT, exist_ok=True)
    for f in glob.glob(os.path.join(OUT, "*.png")):
        os.remove(f)
    if os.path.islink(os.path.join(OUT, "mlp-core")):
        os.remove(os.path.join(OUT, "mlp-core"))
    proc, base = start_lab(free_port())
    try:
        check_tokens(t, base)
        with sync_playwright() as p:
            browser = launch(p)
            context = browser.new_context()
            names = sys.argv[1:] or sorted(os.path.basename(n) for n in glob.glob(os.path.join(WORK, "*.ipynb")))
            for name in names:
                start = time.time()
                page = open_notebook(context, base, name)
                opened = time.time() - start
                run_all(page)
                try:
                    if name == "03_mnist.ipynb":
                        watch_live(t, page)
                    else:
                        wait_done(page)
                except Exception:
                    shot(page, OUT, name.replace(".ipynb", "") + "-timeout")
                    raise
                info = inspect(page)
                print("  %s: opened in %.1f s, ran in %.1f s" % (name, opened, time.time() - start - opened),
                      flush=True)
                check_notebook(t, name, info)
                shot(page, OUT, name.replace(".ipynb", ""))
                page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").last.scroll_into_view_if_needed()
                shot(page, OUT, name.replace(".ipynb", "") + "-end")
                page.close()
            # two notebooks at once, in two tabs
            pair = ["02_toy_network.ipynb", "04_regularization.ipynb"]
            start = time.time()
            pages = [open_notebook(context, base, n) for n in pair]
            for page in pages:
                run_all(page)
            for page, name in zip(pages, pair, strict=True):
                wait_done(page)
                check_notebook(t, "together: " + name, inspect(page))
                shot(page, OUT, "together-" + name.replace(".ipynb", ""))
            print("  two notebooks at once: done in %.1f s" % (time.time() - start), flush=True)
            context.close()
            check_html(t, browser)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)
        os.remove(os.path.join(OUT, "mlp-core"))
    print("screenshots in %s" % os.path.relpath(OUT, ROOT))
    t.close("browser")


if __name__ == "__main__":
    main()
