"""hub-test --browser: make hub's own configuration (NativeAuthenticator: sign-up, the
instructor's approval) in headless Chromium, and a student's Run All of notebook 2."""

import shutil
import time

from playwright.sync_api import sync_playwright

from support.hub import CONTAINERS, OUT, TOKEN, Hub, login
from support.jupyterlab import AS_ONE_ADDRESS_SPACE, inspect, launch, run_all, shot, students_page, wait_done, wait_idle


def browser_student(t):
    """make hub's own configuration (NativeAuthenticator) in headless Chromium: the
    instructor signs up, a student signs up, the instructor approves them, the student
    logs in, opens notebook 2 of their student edition and runs it (Run All)."""
    hub = Hub(test_auth=False, pool=1)
    if CONTAINERS:
        hub.release()
    hub.wait_for_pool(t)
    base = hub.base + "/hub"

    try:
        with sync_playwright() as p:
            browser = launch(p, AS_ONE_ADDRESS_SPACE)

            def signup(page, name, password):
                page.goto(base + "/signup")
                page.fill("#username_input", name)
                page.fill("#password_input", password)
                page.fill("#password_confirmation_input", password)
                page.click("#signup_submit")
                page.wait_for_load_state()
                return page.inner_text("body")

            instructor = browser.new_context().new_page()
            text = signup(instructor, "instructor", "instructor-pass-%s" % TOKEN[:6])
            t.check("browser: the instructor signs up", "created" in text.lower() or "success" in text.lower(),
                    text[:300])
            student = browser.new_context().new_page()
            student.set_viewport_size({"width": 1400, "height": 1000})
            password = "student-pass-%s" % TOKEN[:6]
            text = signup(student, "alice", password)
            t.check("browser: a student signs up and waits for approval", "sent to the admin" in text, text[:300])
            login(student, hub, "alice", password)
            t.check("browser: before approval the student cannot log in", "/login" in student.url, student.url)
            login(instructor, hub, "instructor", "instructor-pass-%s" % TOKEN[:6], next_url="/hub/authorize")
            instructor.wait_for_url("**/hub/authorize**")
            # a page on another student's origin, opened by the instructor, asks the hub to
            # approve alice (an <img>: the same site, so the instructor's cookie goes with it)
            trap = students_page(instructor.context, hub, "mallory",
                                 '<img src="%s/authorize/alice"><img src="%s/spawn">' % (base, base))
            trap.wait_for_timeout(2000)
            trap.close()
            login(student, hub, "alice", password)
            print("  an <img> of /hub/authorize/alice on a student's origin, in the instructor's browser: alice %s"
                  % ("can log in: BREACHED" if "/login" not in student.url else "still waits for approval: HELD"))
            t.check("browser: a page on a student's origin cannot approve an account with the instructor's session",
                    "/login" in student.url, student.url)
            servers = (hub.call("/users/instructor")[1] or {}).get("servers", {})
            print("  an <img> of /hub/spawn there: the instructor's servers %s" % (servers or "none: HELD"))
            t.check("browser: ... nor start a server with it", not servers, servers)
            # a link to the login form whose `next` approves alice: logged out, the instructor
            # logs in there (the form's redirect comes from the hub's own origin)
            instructor.goto(base + "/logout")
            login(instructor, hub, "instructor", "instructor-pass-%s" % TOKEN[:6], next_url="/hub/authorize/alice")
            login(student, hub, "alice", password)
            t.check("browser: the login form's next= cannot approve an account (%s)" % instructor.url,
                    "/login" in student.url, student.url)
            # an account whose name is a path: a button of /hub/authorize would act on another
            text = signup(browser.new_context().new_page(), "..\\authorize\\alice", password)
            at = text.find("Something went wrong")
            said = " ".join(text[at:].split())[:120] if at >= 0 else ""
            print("  sign-up as ..\\authorize\\alice: %s" % (said or "accepted: BREACHED"))
            t.check("browser: a user name that is a path is refused at sign-up",
                    "sent to the admin" not in text and said, text[:300])
            instructor.goto(base + "/authorize")
            instructor.click("a[href$='authorize/alice']")
            instructor.wait_for_load_state()
            shot(instructor, OUT, "hub-authorize")
            login(student, hub, "alice", password)
            student.wait_for_url("**/user/alice/lab/**", timeout=180000)
            student.wait_for_selector(".jp-DirListing-item", timeout=120000)
            names = student.locator(".jp-DirListing-itemName").all_inner_texts()
            t.check("browser: the student's lab opens on ~/mlp, the student edition", "02_toy_network.ipynb" in names,
                    names)
            if CONTAINERS:
                running = hub.containers()
                print("  podman ps: %s" % " ".join(running))
                t.check("browser: one container per logged-in student (%s)" % ", ".join(running),
                        len(running) == 1 and running[0].endswith("-alice"), running)
            start = time.time()
            student.goto(hub.server("alice") + "/lab/tree/mlp/02_toy_network.ipynb")
            wait_idle(student)
            shot(student, OUT, "hub-student-opened")
            run_all(student)
            # what the student is after: the first check cell's verdict on their unfinished code
            stderr = student.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            verdict = stderr.filter(has_text="not yet implemented").filter(has_text="in your function").first
            try:
                verdict.wait_for(timeout=600000)
            except Exception:
                shot(student, OUT, "hub-student-timeout")
                raise
            print("  browser: the student's first check cell answered %.1f s after Run All" % (time.time() - start))
            text = verdict.text_content()  # (inner_text is empty for a cell scrolled out of view)
            t.check("browser: the unfinished function stops with 'not yet implemented', named", "forward_loss" in text,
                    text)
            verdict.scroll_into_view_if_needed()
            shot(student, OUT, "hub-student-notebook2")
            wait_done(student)
            seen = inspect(student)
            print("  browser: Run All done %.1f s after it was asked" % (time.time() - start))
            t.check("browser: Run All ran every cell of the student's notebook 2 (numbered from [1])",
                    seen["prompts"] and seen["prompts"][0] == "[1]:" and all(p.startswith("[") and p[1:-2].isdigit()
                                                                           for p in seen["prompts"]), seen["prompts"])
            t.check("browser: no cell ended in an error (the unfinished code panics, it compiles)",
                    not seen["errors"], seen["errors"][:2])
            browser.close()
    finally:
        hub.stop()
    time.sleep(1)
    t.check("browser: nothing left running after that hub stopped", not hub.leftovers(), hub.leftovers())
    shutil.rmtree(hub.state, ignore_errors=True)

