"""Course tooling for instructors and developers: release, benchmark, notebook execution (not for students)."""
