"""nbgrader's exchange on the course's hub, for instructors and students alike (on JUPYTER_CONFIG_PATH of every
server the hub starts: tools/hub/jupyterhub_config.py). On a hub of your own, the same lines can go into
/etc/jupyter/nbgrader_config.py, as nbgrader's documentation does."""
import os

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "normalization-course"
c.Exchange.root = os.environ.get("COURSE_HUB_EXCHANGE", "/srv/nbgrader/exchange")
