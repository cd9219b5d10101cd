"""Formgrader's views of a submission (mlp_lab/course/formgrader.py): a written answer's
HTML sanitised, and the page's Content-Security-Policy allowing only the template's own
inline scripts."""

import base64
import hashlib

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

from mlp_lab.course.formgrader import submission_policy

ANSWER = """# Derivation

The gradient is $\\frac{\\partial L}{\\partial z} = a < b$ and **so**.

<img src="x" onerror="window.hacked = 1">
<script>window.hacked = 2</script>
<a href="javascript:alert(1)">click</a> <a href="https://cs231n.github.io" onclick="x()">notes</a>

| a | b |
|---|---|
| 1 | 2 |
"""


def rendered(source):
    c = Config()
    c.HTMLExporter.template_name = "classic"
    c.HTMLExporter.filters = {"markdown2html": "mlp_lab.course.formgrader.sanitised_markdown"}
    html, _ = HTMLExporter(config=c).from_notebook_node(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(source)]))
    return html[html.index("Derivation") - 200:]


def test_a_written_answer_keeps_its_layout_and_loses_its_scripts():
    html = rendered(ANSWER)
    assert '<h1 id="Derivation">' in html and "<strong>so</strong>" in html and "<td>1</td>" in html
    assert "a &lt; b" in html  # the formula stays text for MathJax
    assert "onerror" not in html and "onclick" not in html and "javascript:" not in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="https://cs231n.github.io">notes</a>' in html


def sha(text):
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text).digest()).decode()


def test_the_policy_allows_the_templates_scripts_and_nothing_in_the_notebook():
    page = (b'<html><head><script src="/static/jquery.js"></script>\n<script type="text/javascript">\n'
            b'var submission_id = "42";\n</script><script type="text/x-mathjax-config">init()</script></head>'
            b'<body><nav><script>tooltip()</script></nav><div id="notebook-container">'
            b'<script>window.hacked = 1</script><img src=x onerror="y()"></div></body></html>')
    prefix = "http://course--service.hub.localhost:8000/services/course/"
    policy = submission_policy(page, prefix)
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    # script files from Formgrader's and the server's static folders only: not the
    # service's whole origin, which serves the submissions as files
    assert script_src.split()[1:3] == [prefix + "formgrader/static/", prefix + "static/"]
    assert "'self'" not in script_src
    assert sha(b'\nvar submission_id = "42";\n') in script_src and sha(b"tooltip()") in script_src
    assert sha(b"window.hacked = 1") not in script_src
    assert "unsafe-inline" not in script_src and script_src.count("sha256-") == 2
    assert "object-src 'none'" in policy and "base-uri 'self'" in policy


def test_the_policy_goes_out_with_formgraders_submission_page_only():
    from tornado.httputil import HTTPHeaders, HTTPServerRequest

    from mlp_lab.course import formgrader

    class App:
        transforms = []
        handlers = []

        def add_handlers(self, host, handlers):
            self.handlers += handlers

    class Server:
        web_app = App()
        base_url = "/services/course/"

        class log:
            info = staticmethod(lambda *a: None)

    formgrader._load_jupyter_server_extension(Server)
    assert [h[0] for h in App.handlers] == ["/services/course/grading-queue"]  # grading on hand-in's queue
    transform = App.transforms[0]
    page = b'<script>var submission_id = "7";</script><div id="notebook-container"></div>'
    for path, wanted in (("/services/course/formgrader/submissions/7/", True), ("/services/course/lab", False)):
        headers = HTTPHeaders({"Content-Type": "text/html; charset=UTF-8"})
        request = HTTPServerRequest(uri=path, headers=HTTPHeaders({"Host": "course--service.hub.localhost:8000"}))
        status, headers, chunk = transform(request).transform_first_chunk(200, headers, page, True)
        assert status == 200 and chunk == page
        assert ("Content-Security-Policy" in headers) == wanted, path
        if wanted:
            assert "http://course--service.hub.localhost:8000/services/course/formgrader/static/" in headers[
                "Content-Security-Policy"]
