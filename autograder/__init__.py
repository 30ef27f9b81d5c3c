"""The instructor side of the course: nbgrader configuration, grading sandbox, grading command, example submissions."""
