"""`make grading-test`: nbgrader grades a class's worth of submissions, honest and not.

    python tests/grading_test.py

In a scratch copy of the course folder (the real course/submitted/ is left alone), these
students hand in (EXPECTED below has each one's scores):

- `solved`: the solved edition (course/source/mlp/): all 45 autograded points;
- `blank`: the release untouched: 0 points, and the autograder does not fail;
- `bug`: the sigmoid's derivative written `h * (1.0 + h)` in the backward pass: the
  checks that depend on it lose their points, the rest keep theirs;
- `typo`: a compile error in notebook 2's predict cell: the cells that need predict lose
  their points, the others are graded;
- `snoop`: the solved edition whose backward-pass cell also tries to read the course's
  source, the gradebook, another submission and root's files, and to write into the
  course folder and over another submission: every attempt fails, nothing on this machine
  changes, and it keeps its 45 points;
- and the attacks (`attacks`): `shadow` (helpers named as the checks' functions, `Err`
  and types), `macros` (the standard macros redefined), `soldep` (`:dep` with the
  library's `solutions`, `extern crate self as mlp_core`), `fakeprint` (evcxr's own
  protocol printed: a value of 10 and the cell's end), `exits` (the kernel's process
  ended), `hangs` (a predict that never returns, a cell that allocates without end),
  `broken` (a malformed notebook, a missing one, a renamed one). Each scores what its
  code earned, with a feedback line that says what happened.

All are graded by `mlp_lab/course/autograde.py` (two at a time, each notebook in the grading
sandbox, a cell's limit `MLP_GRADE_CELL_TIMEOUT`, 90 s here), then `nbgrader
generate_feedback` and `nbgrader export` (grades.csv). Prints each score per question, the
feedback lines of the attacks, the time each autograde took, and closes with
'grading: N passed, N failed'.
"""

import csv
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import nbformat

from mlp_lab.course import grader as grader_account
from mlp_lab.tally import Tally
from support import ROOT
from support.course import append, edit, feedback_lines, hand_in, scratch_course

NBGRADER = os.path.join(os.path.dirname(sys.executable), "nbgrader")

QUESTIONS = {"q2_1": 5, "q2_2": 10, "q2_3": 5, "q2_4": 5, "q2_5_1": 10, "q2_5_2": 10}
EXPECTED = {
    "solved": QUESTIONS,
    "blank": {q: 0 for q in QUESTIONS},
    "bug": {"q2_1": 5, "q2_2": 0, "q2_3": 0, "q2_4": 5, "q2_5_1": 0, "q2_5_2": 10},
    "typo": {"q2_1": 5, "q2_2": 10, "q2_3": 0, "q2_4": 0, "q2_5_1": 10, "q2_5_2": 10},
    # the solved edition that also tries to read the course's source, the gradebook and
    # another submission, and to write into the course folder (tried inside the sandbox)
    "snoop": QUESTIONS,
    # the blank edition with helpers that would make every check pass if a test cell
    # called them by their bare names: a function `points`, `check_close`, `Err`, types
    "shadow": {q: 0 for q in QUESTIONS},
    # the blank edition that redefines the standard macros a check could use
    "macros": {q: 0 for q in QUESTIONS},
    # the blank edition that turns on mlp-core's `solutions` with a `:dep` line of its own
    # and writes loss with the library's finished one
    "soldep": {q: 0 for q in QUESTIONS},
    # the blank edition whose forward_loss prints evcxr's own protocol: a value of 10 points
    # and the end of the cell
    "fakeprint": {q: 0 for q in QUESTIONS},
    # the solved edition that ends the kernel's process in a cell of notebook 2 before the
    # checks of Q2.3 and Q2.4: those two are not graded, everything else is
    "exits": {"q2_1": 5, "q2_2": 10, "q2_3": 0, "q2_4": 0, "q2_5_1": 10, "q2_5_2": 10},
    # the solved edition whose predict loops forever on notebook 3's data (the check's
    # time limit stops it) and whose notebook 2 allocates without end in a cell (the memory
    # limit ends it): only what those stopped loses its points
    "hangs": {"q2_1": 5, "q2_2": 10, "q2_3": 0, "q2_4": 0, "q2_5_1": 0, "q2_5_2": 0},
    # a malformed notebook 2, notebook 3 missing, notebook 4 under another name
    "broken": {"q2_1": 0, "q2_2": 0, "q2_3": 0, "q2_4": 0, "q2_5_1": 0, "q2_5_2": 0},
    # the solved edition whose first solution cell writes cargo's configuration (a
    # rustc-wrapper that fails every later compile) and a build script wherever cargo,
    # rustc or evcxr would read them before the checks compile: all refused, all 45 points
    "cargocfg": QUESTIONS,
}
# graded on its own with a short MLP_GRADE_TIMEOUT: the blank edition with 200 cells that
# each sleep 299 s at the end of notebook 2 (it used to hold a grading job about 17 h)
SLEEPER, SLEEPER_TIMEOUT = "sleeper", 120

SHADOW = r"""
fn points(max: f64, _checks: impl FnOnce() -> Result<(), MlpError>) -> f64 { max }
fn check_close(_: &str, _: f64, _: f64, _: f64) -> Result<(), MlpError> { Ok(()) }
fn check_below(_: &str, _: f64, _: f64) -> Result<(), MlpError> { Ok(()) }
#[allow(non_snake_case)]
fn Err<T>(_: T) -> Result<(), MlpError> { Ok(()) }
#[allow(non_camel_case_types, dead_code)]
type f64 = core::primitive::f64;
mod grade { pub fn points(max: f64, _c: impl FnOnce() -> Result<(), mlp_core::MlpError>) -> f64 { max } }
"""
MACROS = r"""
macro_rules! assert { ($($t:tt)*) => {} }
macro_rules! println { ($($t:tt)*) => {} }
macro_rules! format { ($($t:tt)*) => { String::new() } }
macro_rules! vec { ($($t:tt)*) => { Vec::new() } }
"""
SOLDEP = ':dep mlp-core = { path = "MLP_CORE", features = ["solutions"] }\nextern crate self as mlp_core;\n'
SOLDEP_LOSS = r"""
fn library_loss(net: &TwoLayerMLP, x: &Array2<f64>, y: &Array1<usize>, reg: f64) -> (f64, Grads) {
    net.loss(x, y, reg).unwrap()
}
"""
FAKEPRINT = r"""
    println!("EVCXR_BEGIN_CONTENT text/plain\n10.0\nEVCXR_END_CONTENT");
    println!("mlp-grade 0123456789abcdef0123456789abcdef 10.0");
    println!("EVCXR_EXECUTION_COMPLETE");
"""


# A solution cell that reconfigures how the cells after it are compiled: cargo's
# configuration in every folder cargo reads it from (CARGO_HOME and each folder above evcxr's
# work folder), a build script and evcxr's settings; each attempt printed.
CARGOCFG = r"""
{
    // evcxr's work folder (the relay gives evcxr its path; the code runs in its own cwd)
    let work = std::path::PathBuf::from(std::env::var("EVCXR_TMPDIR").unwrap_or_default());
    let home = std::env::var("CARGO_HOME").unwrap_or_default();
    let wrapper = "[build]\nrustc-wrapper = \"/bin/false\"\n";
    let root = "[workspace]\nmembers = [\"work\"]\n[profile.dev]\nopt-level = \"oops\"\n";
    let mut places: Vec<(String, &str)> = vec![
        (format!("{}/config.toml", home), wrapper),
        (format!("{}/config", home), wrapper),
        (format!("{}/build.rs", work.display()), "fn main() { panic!(\"planted\") }"),
        // (work/.cargo/config.toml is evcxr's own, written again before each compile)
        (format!("{}/.cargo/config", work.display()), wrapper),
        ("/opt/mlp-kernels/evcxr/evcxr.toml".into(), "[evcxr]\nopt_level = \"oops\"\n"),
    ];
    for dir in work.ancestors().skip(1) {
        places.push((format!("{}/.cargo/config.toml", dir.display()), wrapper));
        places.push((format!("{}/Cargo.toml", dir.display()), root));
    }
    for (path, text) in places {
        let p = std::path::Path::new(&path);
        let made = std::fs::create_dir_all(p.parent().unwrap()).and_then(|_| std::fs::write(p, text));
        match made {
            Ok(_) => println!("CARGOCFG wrote {}", path),
            Err(e) => println!("CARGOCFG could not write {}: {}", path, e),
        }
    }
}
"""
SLEEP = "std::thread::sleep(std::time::Duration::from_secs(299));"


# Code a student could put in a solution cell to read what they must not and change what
# is not theirs, while being graded.
SNOOP = r"""
{
    for p in [READS] {
        match std::fs::read(p) {
            Ok(b) => println!("SNOOP read {} ({} bytes)", p, b.len()),
            Err(e) => println!("SNOOP could not read {}: {}", p, e),
        }
    }
    for p in [WRITES] {
        match std::fs::write(p, "planted") {
            Ok(_) => println!("SNOOP wrote {}", p),
            Err(e) => println!("SNOOP could not write {}: {}", p, e),
        }
    }
}
"""


def attacks(course, source, release):
    """The submissions that try to get marks without the work, or break the grader."""
    two, three = "02_toy_network.ipynb", "03_mnist.ipynb"
    shadow = hand_in(course, "shadow", release)
    for name in (two, three):
        first = "forward" if name == two else "helpers"
        append(os.path.join(shadow, name), first, SHADOW)
    macros = hand_in(course, "macros", release)
    for name in (two, three):
        append(os.path.join(macros, name), "forward" if name == two else "helpers", MACROS)
    soldep = hand_in(course, "soldep", release)
    for name, cell in ((two, "forward"), (three, "helpers")):
        path = os.path.join(soldep, name)
        nb = nbformat.read(path, as_version=4)
        target = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == cell)
        target.source = SOLDEP.replace("MLP_CORE", os.path.join(ROOT, "mlp-core")) + target.source + (
            SOLDEP_LOSS if name == three else "")
        nbformat.write(nb, path)
    # their forward_loss (notebook 2) and loss (notebook 3) are the library's
    edit(os.path.join(soldep, two), ["forward_loss"], "    // YOUR CODE HERE\n    todo!()",
         "    let value = net.loss(x, y, reg).unwrap().0;\n"
         "    (value, Array2::zeros((x.nrows(), net.hidden_size())), Array2::zeros((x.nrows(), net.output_size())))")
    edit(os.path.join(soldep, three), ["implementation"], "(f64, Grads) {\n    // YOUR CODE HERE\n    todo!()",
         "(f64, Grads) {\n    library_loss(net, x, y, reg)")
    fake = hand_in(course, "fakeprint", release)
    edit(os.path.join(fake, two), ["forward_loss"], "    // YOUR CODE HERE\n", FAKEPRINT + "    // YOUR CODE HERE\n")
    exits = hand_in(course, "exits", source)
    append(os.path.join(exits, two), "predict_sgd", "std::process::exit(0);")
    hangs = hand_in(course, "hangs", source)
    edit(os.path.join(hangs, three), ["implementation"],
         "fn predict(net: &TwoLayerMLP, x: &Array2<f64>) -> Array1<usize> {\n",
         "fn predict(net: &TwoLayerMLP, x: &Array2<f64>) -> Array1<usize> {\n"
         "    if x.nrows() > 1000 { loop { std::hint::spin_loop(); } }\n")
    append(os.path.join(hangs, two), "predict_sgd",
           "let mut hog: Vec<Vec<u8>> = Vec::new();\nloop { hog.push(vec![1u8; 1 << 26]); }")
    cargocfg = hand_in(course, "cargocfg", source)
    append(os.path.join(cargocfg, two), "forward", CARGOCFG)
    sleeper = hand_in(course, SLEEPER, release)
    path = os.path.join(sleeper, two)
    nb = nbformat.read(path, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell(SLEEP) for _ in range(200)]
    nbformat.write(nb, path)
    broken = hand_in(course, "broken", source)
    with open(os.path.join(broken, two), "w") as f:
        f.write('{"cells": [{"cell_type": "code", "source": "fn predict(')
    os.remove(os.path.join(broken, three))
    os.rename(os.path.join(broken, "04_regularization.ipynb"), os.path.join(broken, "04_regularization (1).ipynb"))


def main():
    os.environ.setdefault("MLP_GRADE_CELL_TIMEOUT", "90")
    tally = Tally(show_passes=True)
    check = tally.check

    with tempfile.TemporaryDirectory(prefix="mlp-course-") as scratch:
        course = scratch_course(scratch)
        # the mlp-core path in the release is absolute: the scratch course still finds it
        source = os.path.join(course, "source", "mlp")
        release = os.path.join(course, "release", "mlp")
        hand_in(course, "solved", source)
        hand_in(course, "blank", release)
        bug = hand_in(course, "bug", source)
        for name, cell in [("02_toy_network.ipynb", "backward"), ("03_mnist.ipynb", "helpers")]:
            edit(os.path.join(bug, name), [cell], "h * (1.0 - h)", "h * (1.0 + h)")
        typo = hand_in(course, "typo", source)
        edit(os.path.join(typo, "02_toy_network.ipynb"), ["predict_sgd"], "let (_, scores) = forward(net, x);",
             "let (_, scores) = forward(net, x)")

        snoop = hand_in(course, "snoop", source)
        reads = [os.path.join(source, "02_toy_network.ipynb"), os.path.join(course, "gradebook.db"),
                 os.path.join(course, "submitted", "solved", "mlp", "02_toy_network.ipynb"), "/root/.bash_history"]
        writes = [os.path.join(course, "planted.txt"),
                  os.path.join(course, "submitted", "solved", "mlp", "02_toy_network.ipynb")]
        solved_before = open(writes[1], "rb").read()
        append(os.path.join(snoop, "02_toy_network.ipynb"), "backward",
               SNOOP.replace("READS", ", ".join('"%s"' % p for p in reads))
               .replace("WRITES", ", ".join('"%s"' % p for p in writes)))

        attacks(course, source, release)

        logs = os.path.join(ROOT, "target", "grading", "logs")
        grader = [sys.executable, "-m", "mlp_lab.course.autograde", "--course", course, "--logs", logs]
        # the sleeper beside the class, with a short limit for the whole submission
        sleeping = subprocess.Popen(grader + ["--jobs", "1", SLEEPER], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True,
                                    env=dict(os.environ, MLP_GRADE_TIMEOUT=str(SLEEPER_TIMEOUT)))
        graded = subprocess.run(grader + list(EXPECTED), capture_output=True, text=True)
        print(graded.stdout, end="")
        slept = sleeping.communicate()[0]
        print(slept, end="")
        check(graded.returncode == 0, "autograde: every submission graded (exit %d)%s" % (
            graded.returncode, "" if graded.returncode == 0 else "\n" + graded.stderr[-3000:]))
        account = grader_account.account()
        made = [os.path.join(d, n) for d, ds, fs in os.walk(os.path.join(course, "autograded")) for n in ds + fs]
        others = [p for p in made if os.lstat(p).st_uid != account.pw_uid]
        check(made and not others, "autograde ran as the grader account %s (uid %d), not root: the %d files it "
              "wrote are its%s" % (grader_account.ACCOUNT, account.pw_uid, len(made), others[:5] if others else ""))
        # as make autograde runs them: as the grader account
        as_grader = [sys.executable, "-m", "mlp_lab.course.grader", "--course", course, NBGRADER]
        out = subprocess.run(as_grader + ["generate_feedback", "mlp", "--force"], cwd=course,
                             capture_output=True, text=True)
        check(out.returncode == 0, "generate_feedback" + ("" if out.returncode == 0 else ": " + out.stderr[-2000:]))
        out = subprocess.run(as_grader + ["export", "--to", "grades.csv"], cwd=course, capture_output=True, text=True)
        check(out.returncode == 0 and os.path.exists(os.path.join(course, "grades.csv")), "export grades.csv")

        from nbgrader.api import Gradebook
        with Gradebook("sqlite:///" + os.path.join(course, "gradebook.db")) as gb:
            for student, expected in EXPECTED.items():
                scores = {}
                for nb in gb.find_submission("mlp", student).notebooks:
                    for grade in nb.grades:
                        if grade.name in QUESTIONS:
                            scores[grade.name] = grade.score
                total = sum(scores.values())
                print("  %-7s %s  autograded %g of 45" % (student, "  ".join(
                    "%s %g/%d" % (q, scores.get(q, -1), QUESTIONS[q]) for q in QUESTIONS), total))
                check(scores == expected, "%s scores %s" % (student, "as expected" if scores == expected
                                                            else "%s, expected %s" % (scores, expected)))
        took = [float(m) for m in re.findall(r"^  %s +exit \d+ +(\d+) s" % SLEEPER, slept, re.M)]
        said = [line for line in feedback_lines(course, SLEEPER) if "MLP_GRADE_TIMEOUT" in line]
        print("  %s: 200 cells of 299 s each, MLP_GRADE_TIMEOUT=%d: graded in %s s; feedback: %s"
              % (SLEEPER, SLEEPER_TIMEOUT, took[0] if took else "?", said[0][:160] if said else "nothing"))
        check(took and took[0] < SLEEPER_TIMEOUT + 150 and said,
              "%s: stopped at the submission's time limit, with the reason in its feedback" % SLEEPER)
        nb = nbformat.read(os.path.join(course, "autograded", "cargocfg", "mlp", "02_toy_network.ipynb"),
                           as_version=4)
        tried = [line for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
                 for line in o.get("text", "").splitlines() if line.startswith("CARGOCFG")]
        for line in tried:
            print("  cargocfg, while graded: " + line)
        check(len(tried) >= 12 and all("could not" in line for line in tried),
              "cargocfg: no configuration cargo, rustc or evcxr reads was writable (%d attempts)" % len(tried))
        check("02_toy_network.ipynb is not a readable notebook" in graded.stdout,
              "broken: the malformed notebook is named in autograde's output")
        for student in ("shadow", "macros", "soldep", "fakeprint", "exits", "hangs"):
            lines = feedback_lines(course, student)
            for line in lines[:3]:
                print("  %-9s feedback: %s" % (student, line[:160]))
            check(lines, "%s: its feedback says what happened (%d lines)" % (student, len(lines)))
        check(open(writes[1], "rb").read() == solved_before, "the solved submission is intact after the batch")
        nb = nbformat.read(os.path.join(course, "autograded", "snoop", "mlp", "02_toy_network.ipynb"), as_version=4)
        said = [line for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
                for line in o.get("text", "").splitlines() if line.startswith("SNOOP")]
        for line in said:
            print("  snoop, while graded: " + line)
        check(len(said) == len(reads) + len(writes) and all("could not" in line for line in said),
              "snoop: nothing outside the sandbox read or written (%d attempts)" % len(said))
        check(not os.path.exists(writes[0]), "snoop: nothing planted in the course folder")
        check(open(writes[1], "rb").read() == solved_before, "snoop: the other student's submission is intact")
        with open(os.path.join(course, "grades.csv")) as f:
            rows = {r["student_id"]: r for r in csv.DictReader(f)}
        check(set(rows) == set(EXPECTED) | {SLEEPER}, "grades.csv has a row per student: %s" % sorted(rows))
        for student in EXPECTED:
            pages = glob.glob(os.path.join(course, "feedback", student, "mlp", "*.html"))
            # (broken: notebook 1 only, the others unreadable, missing, renamed)
            want = 1 if student == "broken" else 4
            check(len(pages) == want, "%s: %d feedback pages" % (student, len(pages)))
        # keep what a person would look at
        keep = os.path.join(ROOT, "target", "grading")
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(os.path.join(course, "feedback"), os.path.join(keep, "feedback"))
        shutil.copy(os.path.join(course, "grades.csv"), keep)
        print("feedback and grades.csv copied to %s" % os.path.relpath(keep, ROOT))
    tally.close("grading")


if __name__ == "__main__":
    main()
