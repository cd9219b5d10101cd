"""Formgrader's views of a submission: student content sanitised, formulas without the
internet.

`sanitised_markdown` is nbconvert's `markdown2html` filter followed by nbconvert's own
sanitiser (`clean_html`, bleach): course/nbgrader_config.py sets it, with
`HTMLExporter.sanitize_html` for the outputs, for every HTML view nbgrader makes of a
notebook (Formgrader's grading page, the feedback). nbgrader's formgrade and feedback
templates pipe a markdown cell through `markdown2html` alone, so without it a written
answer's `<img onerror=...>` or `<script>` ran in the instructor's browser, with the
instructor's session, on the hub's origin.

nbgrader's Formgrader shows a submission through nbconvert's `mathjax()` macro
(base/mathjax.html.j2) with its default address, MathJax 2 on cdnjs. A class machine
without internet cannot reach it, and the instructor then grades the written answers
(notebook 1's derivations) as raw LaTeX. `offline_mathjax` writes a copy of that macro
whose default address is the MathJax `make hub-setup` installed from npm (2.7.9, the
version the macro configures): the course service puts it on JUPYTER_PATH (nbconvert
looks there before its own templates) and serves MathJax's folder as a static path of its
own (`ServerApp.extra_static_paths`; the server refuses a symbolic link out of a static
path, and MathJax's names, config/, jax/, fonts/..., are none of the server's own).
"""

import os
import re

from jinja2 import pass_context
from jupyter_core.paths import jupyter_path

from mlp_lab import ROOT

MATHJAX = os.path.join(ROOT, ".tools", "npm", "node_modules", "mathjax")
TEMPLATE = ("nbconvert", "templates", "base", "mathjax.html.j2")
# the macro's first line: {%- macro mathjax(url="https://cdnjs...") -%}
DEFAULT_URL = re.compile(r'(macro mathjax\(url=")[^"]*(")')


def offline_mathjax(folder, prefix):
    """Writes `folder`/nbconvert/templates/base/mathjax.html.j2 for a server at `prefix`
    (such as /services/course/) that serves MATHJAX as a static path. Returns `folder`
    (for JUPYTER_PATH), or None when MathJax is not installed or nbconvert's macro has
    another form (Formgrader then keeps the CDN)."""
    ours = os.path.join(folder, *TEMPLATE)
    upstream = [p for p in (os.path.join(d, *TEMPLATE[1:]) for d in jupyter_path("nbconvert"))
                if os.path.isfile(p) and p != ours]
    if not os.path.isfile(os.path.join(MATHJAX, "MathJax.js")) or not upstream:
        return None
    with open(upstream[0]) as f:
        text = f.read()
    url = prefix.rstrip("/") + "/static/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
    text, found = DEFAULT_URL.subn(lambda m: m.group(1) + url + m.group(2), text, count=1)
    if not found:
        return None
    os.makedirs(os.path.dirname(ours), exist_ok=True)
    with open(ours, "w") as f:
        f.write(text)
    return folder


# what a written answer may use: markdown's own elements and the HTML students write for
# layout; no script, no event handler (no attribute but these), no style, form or frame
TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "h1",
        "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "s", "span",
        "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "u", "ul"}
ATTRIBUTES = {"*": ["class", "id", "title", "align"], "a": ["href"], "img": ["src", "alt", "width", "height"],
              "td": ["colspan", "rowspan"], "th": ["colspan", "rowspan"], "ol": ["start"]}
PROTOCOLS = {"http", "https", "mailto", "data"}  # (data: an attached image, as nbconvert embeds it)


@pass_context
def sanitised_markdown(context, source):
    """A markdown cell as nbconvert's HTMLExporter renders it (its attachments, headings'
    anchors, math kept as text for MathJax), then sanitised by bleach, nbconvert's own
    sanitiser, with the elements above: no script, no event handler, no `javascript:`
    link."""
    import bleach
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    cell = context.get("cell", {})
    renderer = IPythonRenderer(escape=False, attachments=cell.get("attachments", {}),
                               path=context.get("resources", {}).get("metadata", {}).get("path", ""))
    return bleach.clean(MarkdownWithMath(renderer=renderer).render(source), tags=TAGS, attributes=ATTRIBUTES,
                        protocols=PROTOCOLS, strip=False)


# --- Content-Security-Policy on Formgrader's view of a submission --------------------------
# The course service loads this module as a Jupyter server extension
# (deploy/course-config/). Formgrader's grading page needs its own inline scripts (nbgrader's
# formgrade templates write the submission's ids into them), so the policy allows exactly
# those, by hash: the scripts nbgrader's template writes before the notebook's container.
# Nothing inside the notebook (what the student wrote, and what their code printed) can
# run: no inline script, no event handler, no `javascript:` URL, whatever got past the
# sanitiser. Script files only from Formgrader's static folder and the server's (MathJax):
# not from the rest of the service's origin, which serves the students' submissions as
# files (`files/submitted/...`).
NOTEBOOK_START = b'id="notebook-container"'
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)(?![^>]*type=\"text/x-mathjax-config\")[^>]*>(.*?)</script>", re.S)
POLICY = ("default-src 'self'; script-src %s 'unsafe-eval' %s; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; font-src 'self' data:; object-src 'none'; base-uri 'self'; "
          "form-action 'self'; frame-ancestors 'self'")


def submission_policy(html, prefix):
    """The policy for one Formgrader page: its template's own inline scripts by hash, and
    script files under `prefix` (the service's origin and base URL) `formgrader/static/`
    and `static/`."""
    import base64
    import hashlib

    end = html.find(NOTEBOOK_START)
    head = html if end < 0 else html[:end]
    hashes = ["'sha256-%s'" % base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()
              for m in INLINE_SCRIPT.finditer(head)]
    return POLICY % (" ".join(prefix + part for part in ("formgrader/static/", "static/")), " ".join(hashes))


def _jupyter_server_extension_points():
    return [{"module": "mlp_lab.course.formgrader"}]


def _load_jupyter_server_extension(serverapp):
    from tornado.web import OutputTransform

    class SubmissionPolicy(OutputTransform):
        def __init__(self, request):
            super().__init__(request)
            self.applies = "/formgrader/submissions/" in request.path
            # (the host the browser asked for: http: in a policy matches https: too)
            self.prefix = "%s://%s%s" % (request.protocol, request.host, serverapp.base_url)

        def transform_first_chunk(self, status_code, headers, chunk, finishing):
            if self.applies and headers.get("Content-Type", "").startswith("text/html"):
                headers["Content-Security-Policy"] = submission_policy(chunk, self.prefix)
            return status_code, headers, chunk

    # first, before the compression transform sees the page
    serverapp.web_app.transforms.insert(0, SubmissionPolicy)
    serverapp.log.info("mlp_lab: Formgrader's submission pages with a Content-Security-Policy")

    from jupyter_server.base.handlers import JupyterHandler
    from jupyter_server.utils import url_path_join
    from tornado import web

    from mlp_lab.course import on_submit

    class QueuePage(JupyterHandler):
        """Grading on hand-in, as the instructor sees it: every submission the service has
        seen, per student, with its state (mlp_lab/course/on_submit.py)."""

        @web.authenticated
        def get(self):
            course = serverapp.root_dir
            self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
            self.finish(on_submit.queue_page(course))

    serverapp.web_app.add_handlers(".*$", [(url_path_join(serverapp.base_url, "grading-queue"), QueuePage)])
