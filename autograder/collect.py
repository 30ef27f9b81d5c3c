"""Collecting submissions: every file of an export, whose it is, which assignment, and which one is graded.

An export is a folder or a zip file (zips inside it are unpacked in place). Recognised without configuration:

  Canvas "Download Submissions"   <name>[_late]_<userid>_<submissionid>_<file>.ipynb
  Moodle "Download all submissions" <Full Name>_<id>_assignsubmission_file_/<file>.ipynb  (or the same as one name)
  Blackboard, nbgrader zip_collect  <assignment>_<student>_attempt_<YYYY-MM-DD-HH-MM-SS>_<file>.ipynb
  nbgrader exchange inbound       <student>+<assignment>+<timestamp>/<assignment>.ipynb
  nbgrader submitted/             <student>/<assignment>/<assignment>.ipynb  (timestamp.txt beside it, if any)
  one folder per student          <student>/<any name>.ipynb

Folders that hold every submission (a zipped "submissions/" folder, nbgrader's "submitted/") are recognised as
such, not as a student. Skipped, with the reason: ``__MACOSX/`` (macOS metadata), ``.ipynb_checkpoints``, hidden
files, a notebook nobody owns, a notebook of no known assignment. A notebook with another name is matched to its
assignment by its cells. Other files are listed as ignored.

Student ids: from an optional CSV mapping LMS ids (or names) to student ids, else the student's name as a slug
("Anna Müller" -> anna-muller); two different LMS ids with one slug in one assignment keep their id as a suffix.
When two files map to the same student and assignment, the newest is graded and the others are superseded.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from autograder.preflight import printable

CANVAS = re.compile(r"^(?P<name>[^\W_]+)(?:_(?P<late>late))?_(?P<lms_id>\d+)_(?P<submission>\d+)_(?P<file>.+)$",
                    flags=re.I)
MOODLE_FILE = re.compile(r"^(?P<name>.+?)_(?P<lms_id>\d+)_assignsubmission_[a-z]+_(?P<file>.+)$")
MOODLE_FOLDER = re.compile(r"^(?P<name>.+?)_(?P<lms_id>\d+)_assignsubmission_[a-z]+_?$")
BLACKBOARD = re.compile(r"^(?P<assignment>.+?)_(?P<student>[^_]+)_attempt_"
                        r"(?P<timestamp>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)(?:_(?P<file>.+))?$")
EXCHANGE = re.compile(r"^(?P<student>[^+]+)\+(?P<assignment>[^+]+)\+(?P<timestamp>[^+]+)(?:\+.*)?$")
RESUBMISSION = re.compile(r"^(?P<stem>.+?)(?:-(?P<n>\d+)| \((?P<m>\d+)\))$")  # Canvas "-1", a browser's " (1)"


@dataclass
class Owner:
    """Whose a file is, as its name or folder says."""
    layout: str                      # canvas, moodle, blackboard, exchange, nbgrader, folder, regexp
    name: str                        # the student's name or login as the export gives it
    lms_id: str = ""                 # the LMS's id for the student (Canvas user id, Moodle participant id)
    file: str = ""                   # the file name the student uploaded (LMS naming)
    assignment: str = ""             # an assignment the layout names
    timestamp: datetime | None = None
    late: bool = False


@dataclass
class Found:
    """One file of the export and what collecting decided about it."""
    path: Path                       # on disk
    relative: str                    # inside the export, as the instructor sees it
    outcome: str = "submission"      # submission, superseded, skipped, ignored
    detail: str = ""                 # why skipped, ignored or superseded
    owner: Owner | None = None
    student: str = ""
    assignment: str = ""
    timestamp: datetime | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def is_notebook(self) -> bool:
        return self.relative.endswith(".ipynb")


@dataclass
class Collection:
    files: list[Found]

    def having(self, outcome: str) -> list[Found]:
        return [f for f in self.files if f.outcome == outcome]

    @property
    def submissions(self) -> list[Found]:
        return self.having("submission")


# --- reading an export ----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def opened(source: Path):
    """The export as a folder: the folder itself, or a zip unpacked into a temporary folder removed afterwards."""
    if source.is_dir():
        yield source
        return
    if not (source.is_file() and zipfile.is_zipfile(source)):
        raise SystemExit(f"grade: {source} is neither a folder nor a zip file")
    folder = Path(tempfile.mkdtemp(prefix="course-submissions-"))
    try:
        unzip(source, folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def unzip(archive_path: Path, folder: Path) -> None:
    """Unpack a zip into ``folder`` keeping each file's time; no member may land outside it. Zips inside are
    unpacked into a folder named like them (``x.zip`` -> ``x/``) and kept, to be listed as unpacked."""
    with zipfile.ZipFile(archive_path) as archive:
        for member in archive.infolist():
            target = (folder / member.filename).resolve()
            if member.is_dir() or folder.resolve() not in target.parents:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
            stamp = time.mktime(member.date_time + (0, 0, -1))
            os.utime(target, (stamp, stamp))
            if target.suffix.lower() == ".zip" and zipfile.is_zipfile(target) and "__MACOSX" not in target.parts:
                unzip(target, target.with_suffix(""))


def skip_reason(parts: tuple[str, ...]) -> str | None:
    """Why a file at these path parts is not anyone's work, or None."""
    if "__MACOSX" in parts:
        return "macOS metadata (__MACOSX)"
    if ".ipynb_checkpoints" in parts:
        return "Jupyter checkpoint"
    if any(part.startswith(".") for part in parts):
        return "hidden file"
    return None


# --- whose is it ----------------------------------------------------------------------------------------------------

def owner_from_name(name: str, is_file: bool) -> Owner | None:
    """The owner a file or folder name states in one of the LMS layouts, or None."""
    stem = name[:-len(".ipynb")] if is_file and name.endswith(".ipynb") else name
    if is_file and (m := MOODLE_FILE.match(name)):
        return Owner("moodle", m["name"], m["lms_id"], file=m["file"])
    if not is_file and (m := MOODLE_FOLDER.match(name)):
        return Owner("moodle", m["name"], m["lms_id"])
    if m := BLACKBOARD.match(stem):
        return Owner("blackboard", m["student"], file=(m["file"] or "") + (".ipynb" if is_file else ""),
                     assignment=m["assignment"], timestamp=parse_time(m["timestamp"]))
    if not is_file and (m := EXCHANGE.match(name)):
        return Owner("exchange", m["student"], assignment=m["assignment"], timestamp=parse_time(m["timestamp"]))
    if m := CANVAS.match(name):
        return Owner("canvas", m["name"], m["lms_id"], file=m["file"], late=bool(m["late"]))
    return None


def owner_from_regexp(name: str, regexp: str) -> Owner | None:
    """An owner from a user-supplied pattern with the group student_id (and optionally assignment, timestamp)."""
    m = re.match(regexp, name)
    if not m:
        return None
    groups = m.groupdict()
    return Owner("regexp", groups["student_id"], assignment=groups.get("assignment") or "",
                 timestamp=parse_time(groups["timestamp"]) if groups.get("timestamp") else None)


def lms_owner(parts: tuple[str, ...], regexp: str | None) -> Owner | None:
    """The owner an LMS name on the path states (the outermost: a folder the LMS named decides over the name of a
    file in it, which the student chose), or None for a plain layout."""
    if regexp and (owner := owner_from_regexp(parts[-1], regexp)):
        return owner
    for depth in range(len(parts)):
        owner = owner_from_name(parts[depth], is_file=depth == len(parts) - 1)
        if owner:
            return owner
    return None


def named_inside_a_folder(files: list[Found], names: set[str]) -> list[Found]:
    """Files owned by their own LMS-style name although they lie in a folder below those that hold everyone's
    work (a student folder): a student may name an upload after another; the folder decides."""
    folders = {id(f): student_folders(Path(f.relative).parts, names) for f in files if f.is_notebook}
    shared = common_prefix(list(folders.values()))
    return [f for f in files if f.owner and f.owner.file and id(f) in folders and len(folders[id(f)]) > len(shared)
            and not any(owner_from_name(part, is_file=False) for part in folders[id(f)])]


def student_folders(parts: tuple[str, ...], names: set[str]) -> list[str]:
    """The folders above a notebook, without a last folder named after an assignment (nbgrader's layout)."""
    folders = list(parts[:-1])
    if folders and folders[-1] in names:
        folders.pop()
    return folders


def common_prefix(lists: list[list[str]]) -> list[str]:
    prefix: list[str] = []
    for column in zip(*lists):
        if len(set(column)) != 1:
            break
        prefix.append(column[0])
    return prefix


def folder_owners(plain: list[Found], names: set[str]) -> None:
    """Owners of notebooks in plain folders: the first folder below those that hold everyone's work.

    The folders every notebook shares (``submissions/``, nbgrader's ``submitted/``) are containers. When all
    notebooks sit in one folder, that folder is the student (one student's work zipped).
    """
    folders = {id(f): student_folders(Path(f.relative).parts, names) for f in plain}
    shared = common_prefix(list(folders.values()))
    everyone_at_top = all(len(folders[id(f)]) == len(shared) for f in plain)
    for f in plain:
        mine = folders[id(f)]
        if len(mine) > len(shared):
            f.owner = Owner("nbgrader" if len(Path(f.relative).parts) - len(mine) == 2 else "folder",
                            mine[len(shared)])
        elif everyone_at_top and shared:
            f.owner = Owner("folder", shared[-1])
        else:
            f.outcome, f.detail = "skipped", "cannot tell whose it is (no student folder or LMS name)"


# --- which assignment, when -----------------------------------------------------------------------------------------

def assignment_by_name(f: Found, names: list[str]) -> str | None:
    """The assignment the path names: a folder, the uploaded file's name (less "-1" or " (1)"), the layout."""
    parts = Path(f.relative).parts
    for part in reversed(parts[:-1]):
        if part in names:
            return part
    file = f.owner.file if f.owner and f.owner.file else parts[-1]
    stem = file[:-len(".ipynb")] if file.endswith(".ipynb") else file
    candidates = [stem]
    if m := RESUBMISSION.match(stem):
        candidates.append(m["stem"])
    for candidate in candidates:
        if candidate in names:
            return candidate
    if f.owner and f.owner.assignment in names:
        return f.owner.assignment
    return None


def assignment_by_cells(path: Path, released: dict[str, set[str]]) -> str | None:
    """The assignment whose released graded cells (by grade_id) the notebook shares most, at least half, or None."""
    from autograder.preflight import Rejected, bounded

    try:  # any file: within the read and nesting limits, metadata of any type
        cells = json.loads(bounded(path)).get("cells", [])
        ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells if isinstance(c, dict)}
    except (OSError, ValueError, AttributeError, TypeError, RecursionError, Rejected):
        return None
    overlap = {name: len(ids & grade_ids) / max(1, len(grade_ids)) for name, grade_ids in released.items()}
    best = max(overlap, key=overlap.get, default=None)
    return best if best and overlap[best] >= 0.5 else None


def released_grade_ids(root: Path, names: list[str]) -> dict[str, set[str]]:
    ids = {}
    for name in names:
        release = json.loads((root / "notebooks" / name / f"{name}.ipynb").read_text())
        ids[name] = {c["metadata"].get("nbgrader", {}).get("grade_id") for c in release["cells"]} - {None}
    return ids


def parse_time(text: str) -> datetime | None:
    """A time from nbgrader's timestamp format, an ISO time or Blackboard's YYYY-MM-DD-HH-MM-SS, in UTC."""
    text = text.strip()
    try:
        from nbgrader.utils import parse_utc

        return parse_utc(text).replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, TypeError):
        pass
    numbers = re.findall(r"\d+", text)
    if len(numbers) >= 6:
        try:
            return datetime(*map(int, numbers[:6]), tzinfo=timezone.utc)
        except ValueError:
            return None
    return None


def submitted_time(f: Found) -> datetime:
    """When the file was handed in: the layout's time, nbgrader's timestamp.txt beside it (in nbgrader's and the
    exchange's layouts only: in any other folder it is a file the student handed in), else the file's time."""
    if f.owner and f.owner.timestamp:
        return f.owner.timestamp
    stamp = f.path.parent / "timestamp.txt"
    trusted = f.owner is not None and f.owner.layout in ("nbgrader", "exchange")
    if trusted and stamp.is_file() and (when := parse_time(stamp.read_text(errors="replace")[:100])):
        return when
    return datetime.fromtimestamp(f.path.stat().st_mtime, tz=timezone.utc).replace(microsecond=0)


# --- student ids ----------------------------------------------------------------------------------------------------

def slug(name: str) -> str:
    """A student id from a name: ASCII letters, digits, '.', '_' and '-' ("Anna Müller" -> anna-muller)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^\w.]+", "-", ascii_name.strip()).strip("-").lower() or "unnamed"


def plain_id(name: str) -> str:
    """A student id given by the export itself (a folder or login), kept as it is but for unsafe characters."""
    return re.sub(r"[^\w.-]", "_", name)


def read_student_map(path: Path) -> dict[str, str]:
    """LMS id or name -> student id, from a CSV with a header: lms_id,student_id (or Canvas's gradebook export,
    whose ID and SIS Login ID columns are used)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    columns = {c.strip().lower(): c for c in rows[0]}
    lms = next((columns[c] for c in ("lms_id", "id", "name") if c in columns), None)
    student = next((columns[c] for c in ("student_id", "sis login id", "login", "username") if c in columns), None)
    if lms is None or student is None:
        raise SystemExit(f"grade: {path} needs the columns lms_id and student_id (found: {', '.join(rows[0])})")
    return {row[lms].strip(): row[student].strip() for row in rows if row[lms] and row[student]}


def assign_student_ids(found: list[Found], mapping: dict[str, str]) -> None:
    """Each submission's student id: mapped, or the export's own, or the name's slug; never two people in one."""
    for f in found:
        o = f.owner
        mapped = mapping.get(o.lms_id) or mapping.get(o.name)
        if mapped:
            f.student = plain_id(mapped)
        else:
            f.student = plain_id(o.name) if o.layout in ("nbgrader", "folder", "exchange", "blackboard", "regexp") \
                else slug(o.name)
            if mapping:
                f.notes.append(f"{o.lms_id or o.name} is not in the student list; graded as {f.student}")
    by_id: dict[tuple[str, str], set[str]] = {}
    for f in found:
        if f.owner.lms_id:
            by_id.setdefault((f.student, f.assignment), set()).add(f.owner.lms_id)
    for f in found:
        if len(by_id.get((f.student, f.assignment), ())) > 1:
            f.notes.append(f"two students are called {f.student}; this one is {f.student}-{f.owner.lms_id}")
            f.student = f"{f.student}-{f.owner.lms_id}"


def supersede(found: list[Found]) -> None:
    """Of several files for one student and assignment, the newest is the submission; the others are superseded."""
    groups: dict[tuple[str, str], list[Found]] = {}
    for f in found:
        groups.setdefault((f.student, f.assignment), []).append(f)
    for group in groups.values():
        group.sort(key=lambda f: (f.timestamp, resubmission_number(f), f.relative))
        newest = group[-1]
        for old in group[:-1]:
            old.outcome = "superseded"
            same = old.timestamp == newest.timestamp
            old.detail = f"superseded by {newest.relative}" + (" (same time; the later name wins)" if same else
                                                                f" (handed in {newest.timestamp:%Y-%m-%d %H:%M})")


def resubmission_number(f: Found) -> int:
    file = f.owner.file if f.owner and f.owner.file else Path(f.relative).name
    m = RESUBMISSION.match(file[:-len(".ipynb")] if file.endswith(".ipynb") else file)
    return int(m["n"] or m["m"]) if m else 0


# --- the whole step -------------------------------------------------------------------------------------------------

def collect(folder: Path, root: Path, names: list[str], assignment: str | None = None,
            mapping: dict[str, str] | None = None, regexp: str | None = None) -> Collection:
    """Every file under ``folder`` with its outcome; ``root`` is the course (its released notebooks identify
    notebooks by their cells), ``names`` the known assignments, ``assignment`` forces one."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        f = Found(path, path.relative_to(folder).as_posix())
        parts = Path(f.relative).parts
        if reason := skip_reason(parts):
            f.outcome, f.detail = ("skipped" if f.is_notebook else "ignored"), reason
        elif path.suffix.lower() == ".zip":
            f.outcome, f.detail = "ignored", f"a zip: unpacked into {Path(f.relative).with_suffix('').as_posix()}/"
        elif not f.is_notebook:
            f.outcome, f.detail = "ignored", "not a notebook"
        else:
            f.owner = lms_owner(parts, regexp)
        files.append(f)
    candidates = [f for f in files if f.outcome == "submission"]
    for f in named_inside_a_folder(candidates, set(names)):
        f.notes.append(f"its name says {f.owner.name}, but it is in a student's folder: graded as that folder's")
        f.owner = None
    folder_owners([f for f in candidates if f.owner is None], set(names))
    candidates = [f for f in candidates if f.outcome == "submission"]
    released = None
    for f in candidates:
        f.assignment = assignment or assignment_by_name(f, names) or ""
        if not f.assignment:
            released = released if released is not None else released_grade_ids(root, names)
            f.assignment = assignment_by_cells(f.path, released) or ""
        if not f.assignment:
            f.outcome, f.detail = "skipped", "of no known assignment (use --assignment)"
            continue
        uploaded = f.owner.file or Path(f.relative).name
        if uploaded != f"{f.assignment}.ipynb":
            f.notes.append(f"notebook named {uploaded}; graded as {f.assignment}.ipynb")
        if f.owner.late:
            f.notes.append(f"marked late by {f.owner.layout.capitalize()}")
        f.timestamp = submitted_time(f)
    candidates = [f for f in candidates if f.outcome == "submission"]
    assign_student_ids(candidates, mapping or {})
    supersede(candidates)
    return Collection(files)


def plural(count: int, word: str, plural_form: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural_form or word + 's')}"


def summary(collection: Collection) -> str:
    """'found N notebooks: M submissions, K superseded, J skipped (reasons)', and the other files ignored."""
    notebooks = [f for f in collection.files if f.is_notebook]
    skipped = collection.having("skipped")
    reasons: dict[str, int] = {}
    for f in skipped:
        reasons[f.detail] = reasons.get(f.detail, 0) + 1
    because = f" ({', '.join(f'{n} {reason}' for reason, n in reasons.items())})" if reasons else ""
    line = (f"found {plural(len(notebooks), 'notebook')}: {plural(len(collection.submissions), 'submission')}, "
            f"{len(collection.having('superseded'))} superseded, {len(skipped)} skipped{because}")
    others = [f for f in collection.having("ignored") if not f.is_notebook]
    if others:
        line += f"; {plural(len(others), 'other file')} ignored"
    return line


def details(collection: Collection) -> list[str]:
    """One line per file that is not simply graded: superseded, skipped, or graded with a note."""
    lines = []
    for f in collection.files:
        if f.outcome in ("superseded", "skipped"):
            who = f"{f.student} {f.assignment}: " if f.student else ""
            lines.append(printable(f"  {f.outcome}: {who}{f.relative}: {f.detail}", None))  # names are anyone's
    return lines
