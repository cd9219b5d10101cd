"""class-test --browser: the same loop's screens in headless Chromium, with screenshots
in target/class/: a student's Assignment List (the release listed, Fetch, Submit) and
the instructor's Formgrader (the submissions, a written answer graded by hand)."""

import os
import time

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from class_on_submit import queue
from mlp_lab.hub import disks
from support import until
from support.course import scores
from support.http import request
from support.hub import PASSWORD, formgrader, login
from support.jupyterlab import AS_ONE_ADDRESS_SPACE, launch, shot, students_page

# the formulas MathJax 2 has typeset on the page (0 until it has loaded and run)
TYPESET_JS = "() => window.MathJax && window.MathJax.Hub && document.querySelectorAll('.MathJax_CHTML').length"


def browser(c):
    """The late student's Assignment List (fetch, submit) and the instructor's Formgrader
    (the list of submissions, a grade by hand), in headless Chromium; `c`: class_test's
    class (its hub, course folder, tokens, students)."""
    t, hub, course = c.t, c.hub, c.course

    with sync_playwright() as p:
        chromium = launch(p, AS_ONE_ADDRESS_SPACE)

        def login_as(name, password, next_url):
            page = chromium.new_context(viewport={"width": 1400, "height": 900}).new_page()
            login(page, hub, name, password, next_url)
            return page

        page = login_as(c.late, PASSWORD, hub.server(c.late) + "/lab")
        page.wait_for_selector("#jp-main-dock-panel", timeout=120000)
        page.wait_for_timeout(2000)
        page.keyboard.press("Control+Shift+c")
        page.locator('#modal-command-palette li[data-command="nbgrader:open-assignment-list"]').click()
        released = page.locator("#released_assignments_list > .list_item")
        released.first.wait_for(timeout=60000)
        shot(page, c.out, "assignment-list-released")
        t.check("browser: dan's Assignment List shows mlp released (%s)" % released.first.inner_text().split("\n"),
                "mlp" in released.first.inner_text())
        released.first.locator(".item_status button").click()
        fetched = page.locator("#fetched_assignments_list > .list_item")
        fetched.first.wait_for(timeout=60000)
        t.check("browser: dan presses Fetch: mlp is in his fetched list", "mlp" in fetched.first.inner_text())
        fetched.first.locator('.item_status button:text("Submit")').click()
        submitted = page.locator("#submitted_assignments_list > .list_item")
        submitted.first.wait_for(timeout=120000)
        page.wait_for_timeout(500)
        shot(page, c.out, "assignment-list-submitted")
        inbound = os.listdir(disks.inbound_dir(hub.state, c.late))  # (his own)
        t.check("browser: dan presses Submit: it is in his submitted list and in the exchange",
                "mlp" in submitted.first.inner_text() and any(h.startswith(c.late + "+") for h in inbound), inbound)
        # graded on hand-in: the result under the submission, its feedback a click away
        start = time.time()
        until(lambda: any(r.get("student") == c.late and r["state"] == "graded" for r in queue(c).values()), 600,
              step=2)
        page.locator("#refresh_assignments_list").click()
        row = page.locator("#submitted_assignments_list .nested_list_item").filter(has_text="graded:")
        try:
            row.first.wait_for(timeout=60000)
            said = row.first.inner_text()
        except PlaywrightTimeout:
            said = page.locator("#submitted_assignments_list").inner_text()
        page.wait_for_timeout(500)
        shot(page, c.out, "assignment-list-graded")
        print("  dan's Assignment List %.0f s after Submit: %s" % (time.time() - start, " ".join(said.split())))
        t.check("browser: dan's Assignment List shows his result under the submission, with a link to its feedback",
                "graded: 0 of 45 automatic points on the visible checks" in said and "view feedback" in said, said)

        page = login_as(c.instructor, PASSWORD * 4, hub.service() + "/formgrader/manage_submissions/mlp")
        page.locator("#main-table tr").filter(has_text="cat").first.wait_for(timeout=60000)
        page.wait_for_timeout(500)
        page.wait_for_timeout(1000)
        shot(page, c.out, "formgrader-submissions")
        text = page.locator("#main-table").inner_text()
        t.check("browser: Formgrader lists the submissions (ann, bob, cat)",
                all(s in text for s in c.students), text[:500])
        status, subs = formgrader(hub, c.tokens[c.instructor], "submitted_notebooks/mlp/01_backprop_derivations")
        bob = [x for x in subs if x["student"] == "bob"][0]
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        shown = page.goto("%s/formgrader/submissions/%s/" % (hub.service(), bob["id"]))
        policy = (shown.headers.get("content-security-policy", "") if shown else "")
        script_src = next((d.strip() for d in policy.split(";") if d.strip().startswith("script-src")), "")
        print("  Formgrader's page of bob's notebook 1: %s" % (script_src or "no Content-Security-Policy"))
        t.check("browser: Formgrader's submission page allows only its own inline scripts (by hash)",
                "'sha256-" in script_src and "unsafe-inline" not in script_src, policy)
        score = page.locator("input.score.needs_manual_grade").first
        score.wait_for(timeout=60000)
        try:
            typeset = page.wait_for_function(TYPESET_JS, timeout=60000).json_value()
        except PlaywrightTimeout:
            typeset = 0
        mathjax = [u for u in requested if "mathjax" in u.lower() or "/static/jax/" in u]
        t.check("browser: Formgrader typesets bob's notebook 1 (%d formulas) with the course's own MathJax %s"
                % (typeset, mathjax[:1]),
                typeset > 0 and mathjax and all(u.startswith(hub.service() + "/static/")
                                                for u in mathjax), mathjax)
        xss = page.evaluate("() => window.__mlp_xss || null")
        handlers = page.evaluate(
            "() => [...document.querySelectorAll('[onerror], script:not([src])')]"
            ".filter(e => (e.getAttribute('onerror') || e.textContent).includes('__mlp_xss')).length")
        page.wait_for_timeout(1000)
        planted = os.path.exists(os.path.join(course, "xss-planted.txt"))
        status, terminals = request(hub.service() + "/api/terminals", c.tokens[c.instructor])
        print("  bob's written answer with <img onerror> and <script>, opened by the instructor in Formgrader: "
              "%s; script elements or handlers of it on the page: %d; file planted in the course folder: %s; "
              "terminals open on the course service: %s" % (
                  "BREACHED: " + xss if xss else "HELD: no script ran", handlers, planted,
                  terminals if status == 200 else "none (terminals are off: %s)" % status))
        t.check("browser: bob's script in a written answer does not run in the instructor's Formgrader",
                not xss and not handlers and not planted and (status == 404 or terminals == []),
                (xss, handlers, planted, status, terminals))
        score.fill("3")
        score.press("Tab")
        page.locator(".score-saved").first.wait_for(state="visible", timeout=30000)
        page.wait_for_timeout(500)
        shot(page, c.out, "formgrader-grade-by-hand")
        marks = scores(course, c.students)
        t.check("browser: the instructor grades bob's first written answer by hand: 3 (gradebook: %s)"
                % marks.get("bob", (0, 0))[1], marks.get("bob", (0, 0))[1] == 3, marks)
        origins(c, page.context)
        chromium.close()


# a script on a student's origin, in the instructor's browser (logged in to the hub and
# Formgrader): what it can read and write of the others' with the instructor's cookies
CROSS_ORIGIN_JS = """async (tries) => {
  const out = {};
  for (const [name, url, method] of tries) {
    try {
      // (a GET as a plain link would send it; the others as JupyterLab's own calls)
      const write = method !== "GET";
      const r = await fetch(url, {method, credentials: "include",
                                  headers: write ? {"Content-Type": "application/json"} : {},
                                  body: write ? JSON.stringify({type: "file", format: "text", content: "planted"})
                                              : undefined});
      out[name] = "ANSWERED " + r.status + ": " + (await r.text()).slice(0, 80);
    } catch (e) {
      out[name] = "refused (" + e + ")";
    }
  }
  return out;
}"""


def origins(c, context):
    """The hub, each student's server and the course service on origins of their own
    (JupyterHub's subdomain_host): a page on a student's origin (as a student would serve
    one, if a script of theirs ever got past JupyterLab's sanitiser) opened by the
    instructor, whose browser holds the hub's and Formgrader's sessions, tries the hub's
    API, Formgrader, the course folder and another student's server."""
    t, hub = c.t, c.hub
    attacker, victim = c.students[0], c.students[1]
    page = students_page(context, hub, attacker, "<html><body>a student's page</body></html>")
    tries = [["the hub's API: list the users", hub.api + "/users", "GET"],
             ["the hub's API: make a token for the instructor", hub.api + "/users/%s/tokens" % c.instructor,
              "POST"],
             ["Formgrader: the gradebook's submissions", hub.service() + "/formgrader/api/submissions/mlp", "GET"],
             ["the course folder: write a file", hub.service() + "/api/contents/origin-planted.txt", "PUT"],
             ["%s's server: their notebooks" % victim, hub.server(victim) + "/api/contents/mlp", "GET"]]
    said = page.evaluate(CROSS_ORIGIN_JS, tries)
    print("  a script on %s's origin (%s), in the instructor's browser:" % (attacker, hub.server(attacker)))
    for name, _, _ in tries:
        print("    %s: %s" % (name, said[name]))
    planted = os.path.exists(os.path.join(c.course, "origin-planted.txt"))
    print("    the course folder holds origin-planted.txt: %s" % planted)
    t.check("browser: from a student's origin, nothing of the hub, Formgrader or another student answers the "
            "instructor's session", all(v.startswith("refused") for v in said.values()) and not planted, said)
    page.close()

