"""nbgrader for the problem set: the course folder is this one, the assignment `mlp`.

    make assignment   notebooks/ -> source/mlp/ -> release/mlp/ (the student edition)
    make autograde    submitted/<student>/mlp/ -> autograded/, grades.csv, feedback/
"""

import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbconvert.preprocessors.coalescestreams import CoalesceStreamsPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    GetGrades,
    IgnorePattern,
    IncludeHeaderFooter,
    InstantiateTests,
    LimitOutput,
    LockCells,
    SaveAutoGrades,
    SaveCells,
)

from mlp_lab.course import sandbox
from mlp_lab.course.collect import CheckedCollect
from mlp_lab.course.container_release import ContainerRelease
from mlp_lab.course.exchange import COURSE_ID, hub_state
from mlp_lab.course.private_feedback import PrivateFeedback
from mlp_lab.course.sandbox import SandboxedExecute
from mlp_lab.course.student_edition import StudentDependency

# several students graded at once (mlp_lab/course/autograde.py): this process's turn at the gradebook
if sandbox.GRADEBOOK is None:
    sandbox.GRADEBOOK = sandbox.GradebookLock()

c = get_config()  # noqa: F821

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = COURSE_ID

# nbgrader's file exchange with the students of `make hub` (mlp_lab/course/exchange.py): in the
# hub's state folder, beside the students' homes, whose owners are the students' uids
c.Exchange.root = os.path.join(hub_state(c.CourseDirectory.root), "exchange")
os.environ.setdefault("MLP_HUB_HOMES", os.path.join(hub_state(c.CourseDirectory.root), "homes"))
c.ExchangeFactory.collect = CheckedCollect
c.ExchangeFactory.release_assignment = ContainerRelease
c.ExchangeFactory.release_feedback = PrivateFeedback

# Rust solution stubs: a function body the student replaces; it compiles, and running it
# stops with "not yet implemented"
c.ClearSolutions.code_stub = {"rust": "// YOUR CODE HERE\ntodo!()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# a cell's time limit when graded (the slowest, training an MNIST network, takes about 15 s
# alone in the grading sandbox; the image holds mlp-core compiled)
c.Execute.timeout = int(os.environ.get("MLP_GRADE_CELL_TIMEOUT") or 300)
c.Execute.startup_timeout = 120

# nbgrader's own list, with the student edition's dependency line before the cells are saved
c.GenerateAssignment.preprocessors = [
    IncludeHeaderFooter, InstantiateTests, LockCells, ClearSolutions, StudentDependency,
    ClearOutput, CheckCellMetadata, ComputeChecksums, SaveCells, ClearHiddenTests,
    ClearMarkScheme, ComputeChecksums, CheckCellMetadata,
]

# every HTML view of a submission (Formgrader's grading page, the feedback) sanitises what the
# student wrote: their markdown (mlp_lab/course/formgrader.py) and their cells' outputs
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {"markdown2html": "mlp_lab.course.formgrader.sanitised_markdown"}

# the feedback a student reads shows what the hidden tests printed, not their code; and a
# cell's printed lines in one block (evcxr sends each line as a message of its own)
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CoalesceStreamsPreprocessor,
                                    CSSHTMLHeaderPreprocessor]

# autograde runs each notebook in a container of the course image, not on this machine
# (mlp_lab/course/sandbox.py, SandboxedExecute): nbgrader's own list, with that in place of Execute
c.Autograde.autograde_preprocessors = [
    SandboxedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
    AssignLatePenalties, CheckCellMetadata,
]
