"""JupyterHub for a course on one machine: `make hub` (see deploy/README.md).

Each student signs up at /hub/signup; the instructor (the admin, `MLP_HUB_ADMIN`,
default `instructor`) approves them at /hub/authorize. A student's server runs in a
container of its own, made from the course image (deploy/Dockerfile, `make image`) by
JupyterHub's DockerSpawner through podman's Docker-compatible API: their own home volume
(`<state>/homes/<name>`, holding their copy of the student edition in `mlp/`, copied once
and never overwritten), a memory and a CPU limit, their own processes and network
namespace, nothing of the hub's state. Each container keeps a warm Rust kernel ready, so
that the first cell answers in about a second. Idle servers are stopped by
jupyterhub-idle-culler after `MLP_HUB_IDLE` seconds (default 3600).

Settings from the environment (the Makefile sets them): MLP_HUB_IP (127.0.0.1),
MLP_HUB_PORT (8000), MLP_HUB_ORIGIN (the hub's public origin, each student's server and
each service on a subdomain of it: http://hub.localhost:PORT; `none` for one origin),
MLP_HUB_API_PORT (the hub's own API, 8081), MLP_HUB_STATE (deploy/state), MLP_HUB_MEM,
MLP_HUB_CPUS, MLP_HUB_DISK and MLP_HUB_INBOUND (each student's limits: 3G, 1, 2G for their
home, 64M for what they hand in),
MLP_HUB_POOL (warm kernels kept in each student's container: 1; 0 for none;
MLP_HUB_POOL_DEP: the `:dep` line they run, by default the student edition's),
MLP_HUB_IMAGE (the course image; by default the one `make image` built),
MLP_HUB_ISOLATION (`containers`; `none` serves every student as the hub's own user, with
a warning), MLP_HUB_TEST_PASSWORD and MLP_HUB_TEST_TOKEN (make hub-test only:
JupyterHub's shared-password authenticator and an admin service token instead of sign-up).
"""


import inspect
import json
import os
import shutil
import sys
from urllib.parse import urlparse

from jupyterhub.handlers.pages import SpawnHandler
from tornado import web

from mlp_lab import ROOT
from mlp_lab.course import formgrader, grader
from mlp_lab.hub import containers as hub_containers
from mlp_lab.kernel.home import kernel_home

VENV = os.path.join(ROOT, ".venv")
STATE = os.environ.get("MLP_HUB_STATE", os.path.join(ROOT, "deploy", "state"))
RELEASE = os.path.join(ROOT, "course", "release", "mlp")
ADMIN = os.environ.get("MLP_HUB_ADMIN", "instructor")
os.makedirs(os.path.join(STATE, "homes"), exist_ok=True)

c = get_config()  # noqa: F821 (JupyterHub's config loader provides it)

c.JupyterHub.ip = os.environ.get("MLP_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("MLP_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("MLP_HUB_API_PORT", "8081"))

# --- origins: the hub, each student's server and each service on a host name of its own,
# so that a page one of them serves (a student's notebook, a submission in Formgrader) is
# another site to the browser: no script of it reaches the others' cookies or APIs
# (JupyterHub's subdomain_host with __Host- cookies; deploy/README.md, "Origins")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ORIGIN = os.environ.get("MLP_HUB_ORIGIN", "")
if not ORIGIN and c.JupyterHub.ip not in LOOPBACK:
    sys.exit("make hub: MLP_HUB_IP=%s serves the class beyond this machine: set MLP_HUB_ORIGIN to the hub's "
             "public origin (such as https://hub.example.org, with a wildcard DNS name and certificate for "
             "*.hub.example.org: each student's server is at <name>.hub.example.org), or MLP_HUB_ORIGIN=none "
             "for one origin shared by the hub, the students and the course service (deploy/README.md)"
             % c.JupyterHub.ip)
if ORIGIN == "none":
    print("WARNING: MLP_HUB_ORIGIN=none: the hub, every student's server and the course service share one "
          "origin; a script in a student's notebook, opened by the instructor, acts with the instructor's "
          "session (deploy/README.md, \"Origins\").", file=sys.stderr, flush=True)
    SECURE_COOKIES = {}
else:
    # on this machine, hub.localhost: browsers resolve *.localhost to loopback themselves
    # and treat it as a secure context (Secure cookies over http)
    c.JupyterHub.subdomain_host = ORIGIN or "http://hub.localhost:%d" % c.JupyterHub.port
    if "://" not in c.JupyterHub.subdomain_host:  # (https, as JupyterHub assumes)
        c.JupyterHub.subdomain_host = "https://" + c.JupyterHub.subdomain_host
    c.JupyterHub.cookie_host_prefix_enabled = True
    # a __Host- cookie must be Secure: JupyterHub 6.1.1 marks it so only over https (the
    # hub's own, a server's OAuth state cookie), and the browser drops it over http. The
    # hub passes these options to the servers; services get them in their environment,
    # with the __Host- prefix the hub leaves off for them.
    c.JupyterHub.tornado_settings = {"cookie_options": {"secure": True}}
    SECURE_COOKIES = {"JUPYTERHUB_COOKIE_OPTIONS": json.dumps({"secure": True}),
                      "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED": "1"}
    from jupyterhub.handlers.base import BaseHandler
    from jupyterhub.services.service import Service

    HUB = urlparse(c.JupyterHub.subdomain_host)
    hub_prepare = BaseHandler.prepare

    async def prepare_on_hub_origin(self):
        """The proxy sends the hub every request no server's route takes, a student's origin
        included (JupyterHub's default route, `/` on every host): the hub's pages there (a
        login form a student's script could read, a login cookie set for that host) go to
        the hub's own origin instead, as JupyterHub already sends `/user/...` there."""
        if self.request.host_name.lower().rstrip(".").endswith("." + HUB.hostname):
            self.redirect("%s://%s%s" % (HUB.scheme, HUB.netloc, self.request.uri))
            raise web.Finish()
        return await hub_prepare(self)

    BaseHandler.prepare = prepare_on_hub_origin

    # the hub's Services menu links to //<service's host>/services/<name>/, without the
    # hub's port (JupyterHub 6.1.1): the service's full origin instead
    Service.href = property(lambda self: (self.host + self.prefix) if self.host else self.prefix)

DATABASE = os.path.join(STATE, "jupyterhub.sqlite")
c.JupyterHub.db_url = "sqlite:///" + DATABASE
# the hub's database is root's alone (the grader account may pass through this folder)
os.close(os.open(DATABASE, os.O_CREAT | os.O_WRONLY, 0o600))
os.chmod(DATABASE, 0o600)
c.JupyterHub.cookie_secret_file = os.path.join(STATE, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(STATE, "jupyterhub.pid")
c.ConfigurableHTTPProxy.command = [os.path.join(ROOT, ".tools", "npm", "node_modules", ".bin",
                                                "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = os.path.join(STATE, "proxy.pid")


def refuse_unless(handler_class, asked_rightly, why):
    """`handler_class`'s GET, which changes something, answered only when `asked_rightly(request)`:
    a student's origin is the same site as the hub's (<name>.hub.localhost), so an <img> or a
    link on a page of theirs opened by the instructor sends the instructor's cookie with it,
    and JupyterHub checks forgery on other methods only. Decided by what the browser says of
    the request (Sec-Fetch-Site, Referer)."""
    get = handler_class.get

    async def guarded(self, *args, **kwargs):
        if not asked_rightly(self.request):
            raise web.HTTPError(403, why)
        result = get(self, *args, **kwargs)
        return (await result) if inspect.isawaitable(result) else result

    handler_class.get = guarded


# a server is started from the hub's own pages, a link typed or bookmarked, or after login:
# not from another origin of the class (an <img> per student on a student's page would start
# every student's container with the instructor's rights)
refuse_unless(SpawnHandler, lambda r: r.headers.get("Sec-Fetch-Site") not in ("same-site", "cross-site"),
              "start servers from the hub's own pages")

# --- who may log in ---------------------------------------------------------------
# names that are plain in a URL, a host name and a path (an account named `..\authorize\bob`
# made a button of /hub/authorize act on bob)
c.Authenticator.username_pattern = r"^[a-z0-9][a-z0-9_-]{0,31}$"
c.Authenticator.admin_users = {ADMIN}
if os.environ.get("MLP_HUB_TEST_PASSWORD"):
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = os.environ["MLP_HUB_TEST_PASSWORD"]
    c.SharedPasswordAuthenticator.admin_password = os.environ["MLP_HUB_TEST_PASSWORD"] * 4
    c.Authenticator.allow_all = True
else:
    # students sign up; the instructor approves each one (/hub/authorize)
    c.JupyterHub.authenticator_class = "nativeauthenticator.NativeAuthenticator"
    c.NativeAuthenticator.open_signup = False
    c.NativeAuthenticator.minimum_password_length = 8
    c.NativeAuthenticator.check_common_password = True
    c.NativeAuthenticator.allowed_failed_logins = 5
    c.NativeAuthenticator.seconds_before_next_try = 60
    c.Authenticator.allow_all = True  # every user NativeAuthenticator has authorized
    import nativeauthenticator
    import nativeauthenticator.handlers

    class NoStatsd:
        """JupyterHub 6 dropped its statsd client; NativeAuthenticator 1.3.0's login
        handler still times each login with it (an AttributeError, a 500 on every login)."""

        def timer(self, name):
            return self

        def start(self):
            return self

        def stop(self, send=True):
            pass

    if not hasattr(nativeauthenticator.handlers.LoginHandler, "statsd"):
        nativeauthenticator.handlers.LoginHandler.statsd = NoStatsd()

    def from_the_authorize_page(request):
        """NativeAuthenticator 1.3.0 approves and discards accounts on a GET
        (/hub/authorize/<name>, /hub/discard/<name>): taken only from a click on /hub/authorize
        (not a redirect after the login form, whose `next` a student's link can set)."""
        referer = urlparse(request.headers.get("Referer", ""))
        return (request.headers.get("Sec-Fetch-Site") == "same-origin" and referer.netloc == request.host
                and referer.path == "/hub/authorize")

    for handler in (nativeauthenticator.handlers.ToggleAuthorizationHandler,
                    nativeauthenticator.handlers.DiscardHandler):
        refuse_unless(handler, from_the_authorize_page,
                      "approve or discard accounts with the buttons on /hub/authorize")
    c.JupyterHub.template_paths = [os.path.join(os.path.dirname(nativeauthenticator.__file__), "templates")]

# --- each student's server ----------------------------------------------------------
ISOLATION = os.environ.get("MLP_HUB_ISOLATION", "containers")
POOL = os.environ.get("MLP_HUB_POOL", "1" if ISOLATION == "containers" else "4")
c.Spawner.default_url = "/lab/tree/mlp"
# a student's ~/.jupyter configuration is not run by their server (it could serve any page
# on the hub's origin to whoever opens its link: the instructor)
c.Spawner.disable_user_config = True
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
if ISOLATION == "containers":
    # the grader account (mlp_lab/course/grader.py): the exchange's course folder is its,
    # and the course service below runs as it
    COURSE = os.environ.get("MLP_HUB_COURSE") or os.path.join(ROOT, "course")
    GRADER = grader.prepare(COURSE)
    grader.grant_passage(os.path.join(STATE, "homes"), GRADER)
    hub_containers.configure(c, STATE, pool=int(POOL), pool_dep=os.environ.get("MLP_HUB_POOL_DEP", ""),
                             grader=(GRADER.pw_uid, GRADER.pw_gid))
elif ISOLATION == "none":
    # one operating-system user for the whole class (JupyterHub's SimpleLocalProcessSpawner):
    # the hub keeps students out of each other's servers and API, not out of each other's
    # files, processes or the hub's own secrets
    WARNING = ("WARNING: MLP_HUB_ISOLATION=none: every student's code runs as this hub's user; a student "
               "can read and change the other students' notebooks and read the hub's secrets "
               "(deploy/README.md). Use it for a demo, never for a graded class.")
    print(WARNING, file=sys.stderr, flush=True)
    c.JupyterHub.spawner_class = "simple"
    c.Spawner.args = [
        # no exchange without containers: nbgrader's tools stay with the instructor's lab
        "--ServerApp.jpserver_extensions={'nbgrader.server_extensions.formgrader': False, "
        "'nbgrader.server_extensions.course_list': False, 'nbgrader.server_extensions.assignment_list': False, "
        "'nbgrader.server_extensions.validate_assignment': False}",
    ]
    c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(STATE, "homes", "{username}")
    c.Spawner.cmd = [os.path.join(VENV, "bin", "jupyterhub-singleuser")]
    c.Spawner.notebook_dir = "~"
    if os.getuid() == 0:
        c.Spawner.args.append("--allow-root")
    KERNEL_ENV = {
        # the prebuilt compile cache every kernel shares (mlp_lab/kernel/home.py)
        "MLP_KERNEL_HOME": kernel_home(),
        "PATH": os.path.join(VENV, "bin") + os.pathsep + os.environ.get("PATH", ""),
        # the hub's Rust toolchain and crate registry (a student's HOME is their own folder)
        "RUSTUP_HOME": os.environ.get("RUSTUP_HOME", os.path.expanduser("~/.rustup")),
        "CARGO_HOME": os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo")),
    }
    c.Spawner.environment = dict(
        KERNEL_ENV,
        # the student's lab without nbgrader's instructor menus (deploy/student-config)
        JUPYTER_CONFIG_PATH=os.path.join(ROOT, "deploy", "student-config"),
    )

    def copy_student_edition(spawner):
        """The student's own copy of the student edition, in ~/mlp: copied at the first
        start; a notebook already there is never overwritten."""
        work = os.path.join(spawner.home_dir, "mlp")
        os.makedirs(work, exist_ok=True)
        for name in sorted(os.listdir(RELEASE)):
            target = os.path.join(work, name)
            if name.endswith(".ipynb") and not os.path.exists(target):
                shutil.copy(os.path.join(RELEASE, name), target)

    c.Spawner.pre_spawn_hook = copy_student_edition
else:
    sys.exit("MLP_HUB_ISOLATION=%s: use `containers` (the default) or `none`" % ISOLATION)


# --- services -------------------------------------------------------------------------
idle = os.environ.get("MLP_HUB_IDLE", "3600")
c.JupyterHub.services = [
    {"name": "idle-culler",
     "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=" + idle]},
]
if ISOLATION == "none" and int(POOL) > 0:
    # warm kernels, so that a student's first cells answer in about a second: each has
    # run the student edition's `:dep mlp-core` and loaded rust-analyzer's analysis
    # (about 20 s of one core, 0.85 GB each; mlp_lab/kernel/pool.py)
    c.JupyterHub.services.append(
        {"name": "kernel-pool",
         "command": [sys.executable, "-m", "mlp_lab.kernel", "--pool", POOL]
         + (["--dep", os.environ["MLP_HUB_POOL_DEP"]] if os.environ.get("MLP_HUB_POOL_DEP")
            else ["--dep-from", os.path.join(RELEASE, "02_toy_network.ipynb")]),
         "environment": dict(KERNEL_ENV, HOME=os.path.expanduser("~"))})
c.JupyterHub.load_roles = [
    {"name": "idle-culler", "services": ["idle-culler"],
     "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
]
if ISOLATION == "containers":
    # the instructor's server: JupyterLab with nbgrader's Formgrader in the course folder,
    # on this machine as the grader account (never root: everything it reads or runs of a
    # student's goes through it; grading starts the sandbox's rootless containers), at
    # /services/course/ for the admin and MLP_HUB_GRADERS (nbgrader's "shared formgrader
    # service" set-up, with JupyterHub's own `user` of a service). The course folder and
    # the gradebook are never mounted in a student's container; the exchange is the only
    # way between them.
    GRADERS = [name for name in os.environ.get("MLP_HUB_GRADERS", "").split(",") if name]
    # Formgrader typesets formulas with the MathJax from npm, not from a CDN
    # (mlp_lab/course/formgrader.py)
    TEMPLATES = formgrader.offline_mathjax(os.path.join(STATE, "formgrader"), "/services/course/")
    if TEMPLATES is None:
        print("make hub: Formgrader loads MathJax from its CDN (no MathJax in .tools/npm: run make hub-setup)",
              file=sys.stderr)
    c.JupyterHub.services.append({
        "name": "course",
        "url": "http://127.0.0.1:%s" % os.environ.get("MLP_HUB_COURSE_PORT", "8083"),
        "user": grader.ACCOUNT,
        # no terminals: a shell on this machine is one page away from every notebook the
        # instructor opens here (the instructor's own shell is the one that ran make hub)
        "command": [os.path.join(VENV, "bin", "jupyterhub-singleuser"), "--ServerApp.root_dir=" + COURSE,
                    "--ServerApp.terminals_enabled=False"]
        + (["--ServerApp.extra_static_paths=%s" % formgrader.MATHJAX] if TEMPLATES else []),
        "cwd": COURSE,
        "oauth_no_confirm": True,
        "environment": {
            **grader.environment(GRADER),
            "JUPYTERHUB_DEFAULT_URL": "/formgrader",
            # Formgrader's submission pages with a Content-Security-Policy (mlp_lab/course/formgrader.py)
            "JUPYTER_CONFIG_PATH": os.path.join(ROOT, "deploy", "course-config"),
            "MLP_HUB_STATE": STATE,
            **SECURE_COOKIES,
            **({"JUPYTER_PATH": TEMPLATES} if TEMPLATES else {}),
            **{k: v for k, v in os.environ.items() if k.startswith("MLP_GRADE")},
        },
    })
    if os.environ.get("MLP_GRADE_ON_SUBMIT", "1") != "0":
        # grading on hand-in (mlp_lab/course/on_submit.py): as the grader account too; its
        # queue on the course service's /grading-queue page
        c.JupyterHub.services.append({
            "name": "grading",
            "user": grader.ACCOUNT,
            "command": [os.path.join(VENV, "bin", "python"), "-m", "mlp_lab.course.on_submit", "--course", COURSE],
            "cwd": COURSE,
            "environment": {**grader.environment(GRADER), "MLP_HUB_STATE": STATE,
                            **{k: v for k, v in os.environ.items() if k.startswith("MLP_GRADE")}},
        })
    c.JupyterHub.load_roles.append({"name": "graders", "users": [ADMIN] + GRADERS,
                                    "scopes": ["access:services!service=course"]})
if os.environ.get("MLP_HUB_TEST_TOKEN"):
    c.JupyterHub.services.append({"name": "hub-test", "api_token": os.environ["MLP_HUB_TEST_TOKEN"]})
    c.JupyterHub.load_roles.append({"name": "hub-test", "services": ["hub-test"],
                                    "scopes": ["admin:users", "admin:servers", "tokens", "list:users",
                                               "access:servers"]})
