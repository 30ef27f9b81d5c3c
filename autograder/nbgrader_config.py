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

# The sandbox kernelspec exists, and is on JUPYTER_PATH, only while `nbgrader autograde` runs: every other command
# that loads this file (JupyterLab's nbgrader extension, the Validate button, generate_assignment) leaves the
# process's kernels and environment alone, so students never see that kernel.
GRADING = sys.argv[1:2] == ["autograde"] and "nbgrader" in (os.path.basename(sys.argv[0]),
                                                          os.path.basename(os.path.dirname(sys.argv[0])))
if GRADING:
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

c.GenerateFeedback.preprocessors = [GetGrades, feedback.HideTestCode, CSSHTMLHeaderPreprocessor]
