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
# solutions/, the gradebook or the graded notebook, a private scratch folder, memory/process/time limits. It talks
# over Unix sockets in a private folder of its own (autograder/execute.py). Test cells never run in it: the
# execute step below runs them in nbgrader's own process and calls the student's functions in the kernel.
# The sandbox kernelspec exists only while nbgrader autogrades; without bubblewrap, autograde stops: it never runs
# submissions unsandboxed.
import sys  # noqa: E402

sys.path.insert(0, ROOT)
from autograder import execute, feedback, sandbox  # noqa: E402

# The sandbox kernelspec exists, and is on JUPYTER_PATH, only while `nbgrader autograde` runs: every other command
# that loads this file (JupyterLab's nbgrader extension, the Validate button, generate_assignment) leaves the
# process's kernels and environment alone, so students never see that kernel.
GRADING = sys.argv[1:2] == ["autograde"] and "nbgrader" in (os.path.basename(sys.argv[0]),
                                                          os.path.basename(os.path.dirname(sys.argv[0])))
if GRADING:
    try:
        sandbox.bwrap_path()
    except sandbox.SandboxUnavailable as error:
        raise SystemExit(f"nbgrader autograde stopped: {error}")
    sandbox.install_kernelspec()
    sandbox.sweep()  # what an earlier run that was killed left in the temporary folder
    import atexit

    atexit.register(sandbox.sweep)
    sandbox.stop_with_parent()  # a grading worker killed with kill -9 takes its nbgrader with it
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(sandbox.KERNELS), os.environ.get("JUPYTER_PATH")]))
    c.Execute.kernel_name = sandbox.KERNEL_NAME

from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, GetGrades, IgnorePattern,  # noqa: E402
                                    LimitOutput, SaveAutoGrades)
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402

from nbgrader.preprocessors import ClearOutput, DeduplicateIds, OverwriteKernelspec  # noqa: E402
from autograder import feedback_page, overwrite_cells, preflight  # noqa: E402

# A submission over the read limit or nested too deeply is not parsed at all (autograder/preflight.py: nbgrader
# reports it as an error for that student and goes on); metadata of the wrong type is removed first, then the
# pre-flight repairs (autograder/preflight.py), then hidden tests restored into an untouched test cell without
# calling it changed (autograder/overwrite_cells.py).
c.Autograde.sanitize_preprocessors = [preflight.CheckMetadataTypes, ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                      preflight.RepairSubmission, overwrite_cells.RestoreHiddenTests, CheckCellMetadata]
c.Autograde.exporter_class = preflight.BoundedNotebookExporter
c.Autograde.autograde_preprocessors = [execute.GradeOutsideKernel, IgnorePattern, ClearMetadataPreprocessor,
                                       LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]

# Feedback shows each check's message but neither hidden test code nor tracebacks quoting it (autograder/feedback.py).
c.GenerateFeedback.preprocessors = [GetGrades, feedback.HideTestCode, feedback_page.MarkPending,
                                    CSSHTMLHeaderPreprocessor]

# The feedback page (autograder/feedback_page.py): maths rendered without a network, written answers that wait for a
# grader shown as "not graded yet", not 0, markdown through an allowlist. nbgrader's own feedback template stays the
# base. On FeedbackExporter, not HTMLExporter: formgrader renders submissions with an HTMLExporter of this
# configuration and its own template.
c.GenerateFeedback.exporter_class = feedback_page.FeedbackExporter
c.FeedbackExporter.template_name = feedback_page.TEMPLATE_NAME
c.FeedbackExporter.extra_template_basedirs = [str(feedback_page.TEMPLATES)]
# Formgrader's page too renders what a student wrote through the allowlist, and autograder/execute.py keeps only
# inert outputs: nothing a submission made runs in the instructor's browser.
c.HTMLExporter.filters = dict(feedback_page.SAFE_FILTERS)
