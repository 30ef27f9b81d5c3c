"""The course's nbgrader settings: its step folders mapped onto the repository's layout.

solutions/<id>/<id>.ipynb is nbgrader's source step and notebooks/<id>/<id>.ipynb its release step; everything
nbgrader writes while grading (submitted, autograded, feedback, the gradebook) stays under autograder/, git-ignored.
"""
import os

c = get_config()  # noqa: F821

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

c.CourseDirectory.root = ROOT
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "autograder/submitted"
c.CourseDirectory.autograded_directory = "autograder/autograded"
c.CourseDirectory.feedback_directory = "autograder/feedback"
c.CourseDirectory.solution_directory = "autograder/source_solutions"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(ROOT, "autograder", "gradebook.db")
c.CourseDirectory.course_id = "normalization-course"

# Students never see outputs from the solutions, and the released notebooks carry none.
c.ClearOutput.enabled = True
c.GenerateAssignment.create_assignment = True

# A student cell that runs longer than this is cut off; the notebook is still graded.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
c.Execute.startup_timeout = 180  # a loaded machine starts kernels slowly; a slow start is not the student's fault

# Every kernel that runs a submission starts in the grading sandbox (autograder/sandbox.py): no network, no view of
# solutions/ or the gradebook, a private scratch folder, memory/process/time limits. It talks over Unix sockets,
# in a runtime folder private to this nbgrader process. Without bubblewrap, autograde stops: it never runs
# submissions unsandboxed.
import sys  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "autograder"))
import sandbox  # noqa: E402

sandbox.install_kernelspec()
os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(sandbox.KERNELS), os.environ.get("JUPYTER_PATH")]))
c.Execute.kernel_name = sandbox.KERNEL_NAME
c.KernelManager.transport = "ipc"
os.environ["JUPYTER_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="course-grading-runtime-")
if os.geteuid() == 0:  # as root each kernel runs as an unprivileged uid of its own, which creates its sockets here
    os.chmod(os.environ["JUPYTER_RUNTIME_DIR"], 0o1777)
c.KernelManager.ip = os.path.join(os.environ["JUPYTER_RUNTIME_DIR"], "kernel")  # socket paths: <runtime>/kernel-<port>
if "autograde" in sys.argv:
    try:
        sandbox.bwrap_path()
    except sandbox.SandboxUnavailable as error:
        raise SystemExit(f"nbgrader autograde stopped: {error}")

# Feedback shows each check's message but neither hidden test code nor tracebacks quoting it (autograder/feedback.py).
from nbgrader.preprocessors import GetGrades  # noqa: E402
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
import feedback  # noqa: E402

import feedback_page  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, feedback.HideTestCode, feedback_page.MarkPending,
                                    CSSHTMLHeaderPreprocessor]

# The feedback page (autograder/feedback_page.py): maths rendered without a network, written answers that wait for a
# grader shown as "not graded yet", not 0. nbgrader's own feedback template stays the base.
c.HTMLExporter.template_name = feedback_page.TEMPLATE_NAME
c.HTMLExporter.extra_template_basedirs = [str(feedback_page.TEMPLATES)]
c.HTMLExporter.filters = {"mathjax_offline": feedback_page.mathjax_offline, "points": feedback_page.points}

# Autograde restores hidden tests into an untouched test cell without calling it changed (autograder/overwrite_cells.py).
from nbgrader.preprocessors import ClearOutput, DeduplicateIds, OverwriteKernelspec, CheckCellMetadata  # noqa: E402
import overwrite_cells  # noqa: E402

c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                      overwrite_cells.RestoreHiddenTests, CheckCellMetadata]

# The kernels' socket folder made above goes when this nbgrader process ends.
import atexit  # noqa: E402
import shutil  # noqa: E402

if os.path.basename(os.environ.get("JUPYTER_RUNTIME_DIR", "")).startswith("course-grading-runtime-"):
    atexit.register(shutil.rmtree, os.environ["JUPYTER_RUNTIME_DIR"], True)
