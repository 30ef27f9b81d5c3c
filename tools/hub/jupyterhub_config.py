"""The course's JupyterHub: one hub on one machine, instructors and students as Unix users of their own.

Started as root by ``./course hub`` (``jupyterhub -f tools/hub/jupyterhub_config.py``). Each user's single-user
server is a process of that user (LocalProcessSpawner), started from the course's environment (.venv/), behind
configurable-http-proxy (npm, installed by ./course into .venv/hub-proxy/). Assignments move through nbgrader's
exchange, a root-made folder every user can write into (created here when it is missing).

Settings come from the environment, so the same file serves a real class and the test (tests/test_hub.py):

  COURSE_HUB_INSTRUCTORS  comma-separated Unix user names of the instructors (formgrader, the course folder)
  COURSE_HUB_STUDENTS     comma-separated Unix user names of the students; nobody else may log in
  COURSE_HUB_PASSWORD     a shared password (at least 8 characters) for every user: for a test or a workshop;
                          without it users log in with their Unix password (PAM)
  COURSE_HUB_IP, COURSE_HUB_PORT            where the proxy listens (default 127.0.0.1:8000)
  COURSE_HUB_API_PORT, COURSE_HUB_PROXY_API_PORT  the hub's and the proxy's own ports (default 8081, 8001)
  COURSE_HUB_STATE        the hub's database, cookie secret and pid file (default /srv/jupyterhub, root only)
  COURSE_HUB_EXCHANGE     nbgrader's exchange root (default /srv/nbgrader/exchange)
  COURSE_HUB_PROXY        the configurable-http-proxy executable (default .venv/hub-proxy/node_modules/.bin/...)
  COURSE_HUB_USER_ENV     the environment the users' servers run from (default: the hub's own, the course's
                          .venv); every user must be able to read it: where the course's Python is private
                          (under /root), make one with `python -m tools.hub.user_env DEST` (tools/hub/user_env.py)
"""
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
from tools.hub import user_env  # noqa: E402

USER_ENV = Path(os.environ.get("COURSE_HUB_USER_ENV", sys.prefix))  # the hub runs from the course's environment
USER_BIN = USER_ENV / "bin"


def _names(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


INSTRUCTORS = _names("COURSE_HUB_INSTRUCTORS")
STUDENTS = _names("COURSE_HUB_STUDENTS")
STATE = Path(os.environ.get("COURSE_HUB_STATE", "/srv/jupyterhub"))
EXCHANGE = Path(os.environ.get("COURSE_HUB_EXCHANGE", "/srv/nbgrader/exchange"))
PROXY = os.environ.get("COURSE_HUB_PROXY", str(ROOT / ".venv" / "hub-proxy" / "node_modules" / ".bin"
                                               / "configurable-http-proxy"))
if not Path(PROXY).is_file():
    raise SystemExit(f"course hub: the proxy {PROXY} is missing: run ./course setup (it installs "
                     "configurable-http-proxy with npm)")

if not user_env.runnable_by_others(USER_BIN / "python"):
    raise SystemExit(f"course hub: users other than root cannot run {USER_BIN / 'python'} (is its Python under a "
                     "private home folder?): make an environment they can run with `python -m tools.hub.user_env "
                     "DEST` and start the hub with COURSE_HUB_USER_ENV=DEST")

# The hub's own state: root only.
STATE.mkdir(parents=True, exist_ok=True)
STATE.chmod(0o700)
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")

# nbgrader's exchange as nbgrader's docs set it up: made by root, every user may write into it (the sticky bit
# keeps one user from removing another's entries); release_assignment makes the course's folders in it.
if not EXCHANGE.is_dir():
    EXCHANGE.mkdir(parents=True)
    EXCHANGE.chmod(0o1777)

# Network: the proxy is the only public port; the hub and the proxy's API stay on loopback.
c.JupyterHub.ip = os.environ.get("COURSE_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("COURSE_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("COURSE_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.command = [PROXY]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('COURSE_HUB_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.should_start = True

# Who may log in, and how.
c.Authenticator.allowed_users = INSTRUCTORS | STUDENTS
if os.environ.get("COURSE_HUB_PASSWORD"):
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = os.environ["COURSE_HUB_PASSWORD"]
else:
    c.JupyterHub.authenticator_class = "pam"
c.JupyterHub.load_groups = {"instructors": {"users": sorted(INSTRUCTORS)},
                            "students": {"users": sorted(STUDENTS)}}

# Each user's server: a process of that Unix user, in their home folder.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(USER_BIN / "jupyterhub-singleuser")]
c.Spawner.notebook_dir = "~"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120  # a loaded machine starts servers slowly
c.Spawner.http_timeout = 120
c.LocalProcessSpawner.shell_cmd = []


def _jupyter_config_path(spawner) -> str:
    """Students get the course's student settings first (no formgrader, no course list, no Create Assignment);
    everyone gets the exchange's settings (tools/hub/jupyter-config/nbgrader_config.py)."""
    paths = [HERE / "jupyter-config"]
    if spawner.user.name not in INSTRUCTORS:
        paths.insert(0, ROOT / "tools" / "student-config")
    return os.pathsep.join(map(str, paths))


c.Spawner.environment = {
    "JUPYTER_CONFIG_PATH": _jupyter_config_path,
    "COURSE_HUB_EXCHANGE": str(EXCHANGE),
    "PATH": os.pathsep.join([str(USER_BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
}
