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
