"""JupyterLab in headless Chromium (Debian's, driven by Playwright for Python): launch it,
wait for a notebook's kernel, Run All, wait until every cell has run, read what the page
shows."""

import os

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# seconds for one notebook (notebook 3 trains two networks on MNIST)
RUN_TIMEOUT = int(os.environ.get("BROWSER_RUN_TIMEOUT", 900))


def shot(page, folder, name):
    """A screenshot of what the page shows now, as folder/name.png."""
    page.screenshot(path=os.path.join(folder, name + ".png"))


def launch(playwright, args=()):
    """Headless Chromium (without its sandbox when run as root, which it refuses)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=(["--no-sandbox"] if os.getuid() == 0 else []) + list(args))


# A page a test makes up on a student's origin (Playwright's route) has no address, and
# Chromium counts it as on the internet: its requests to this machine's names are then
# refused by Local Network Access, whatever the hub does. A student's real page comes from
# the same machine as the hub (or, in a class on a network, from the same public address),
# so the tests that plant one turn that check off, and the hub's own walls are what they see.
AS_ONE_ADDRESS_SPACE = ["--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessRespectPreflightResults"]


def students_page(context, hub, student, body):
    """A new page in `context` (a browser of AS_ONE_ADDRESS_SPACE) at a file of `student`'s
    server holding the HTML `body`, as their server would serve it: the browser takes it
    as from their origin."""
    page = context.new_page()
    url = hub.server(student) + "/files/trap.html"
    page.route(url, lambda route: route.fulfill(status=200, content_type="text/html", body=body))
    page.goto(url)
    return page


def wait_idle(page, timeout=180):
    """Until the open notebook's kernel has started and is idle (the toolbar's status)."""
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=timeout * 1000)
    # the notebook loaded (no spinner) and its kernel connected: the indicator says idle
    # with no kernel at all, so the kernel's name must be there too
    page.wait_for_function("""() => {
        const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
        if (!panel || panel.querySelector('.jp-Spinner')) return false;
        const s = panel.querySelector('.jp-Notebook-ExecutionIndicator');
        const name = panel.querySelector('.jp-Toolbar-kernelName');
        return s && s.getAttribute('data-status') === 'idle' && name && name.textContent.trim() !== ''
            && !name.textContent.includes('No Kernel');
    }""", timeout=timeout * 1000)


def run_all(page):
    page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=10000)  # the menu bar's Run menu
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=10000)


def wait_done(page, timeout=RUN_TIMEOUT, every_cell=True):
    """Until the kernel is idle and every code cell has an execution count (or, with
    every_cell=False, until none is queued any more: Run All stops at a cell's error)."""
    page.wait_for_function("""(everyCell) => {
        const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
        const s = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
        if (!s || s.getAttribute('data-status') !== 'idle') return false;
        const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent);
        if (everyCell) return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p));
        return prompts.some(p => /\\[\\d+\\]/.test(p)) && !prompts.some(p => p.includes('*'));
    }""", arg=every_cell, timeout=timeout * 1000, polling=1000)


def inspect(page):
    return page.evaluate("""() => {
        const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
        const q = sel => [...panel.querySelectorAll(sel)];
        return {
            cells: q('.jp-CodeCell').length,
            prompts: q('.jp-CodeCell .jp-InputArea-prompt').map(p => p.textContent.trim()),
            errors: q('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
                .map(e => e.innerText.slice(0, 300)),
            stderr: q('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
                .map(e => e.innerText.slice(0, 300)),
            images: q('.jp-OutputArea-output img').map(i => [i.complete, i.naturalWidth]),
            math: q('mjx-container').length,
            mathErrors: q('mjx-merror').length + q('.MathJax_Error').length,
            // lines wider than their cell: cut at the right edge
            clipped: q('.jp-CodeCell .cm-scroller').filter(c => c.scrollWidth > c.clientWidth + 2).length,
        };
    }""")

