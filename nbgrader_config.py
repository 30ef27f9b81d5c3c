"""nbgrader reads this file from the repository root; the course's settings live in autograder/."""
import os

load_subconfig(os.path.join(os.path.dirname(os.path.abspath(__file__)), "autograder", "nbgrader_config.py"))  # noqa: F821
