"""make assignment's leak check (mlp_lab/course/release_check.py): no solution or hidden-test line
of the source may survive in the student edition."""

import nbformat

from mlp_lab.course.release_check import leaked_lines

SOURCE = """fn relu(z: &Array2<f64>) -> Array2<f64> {
    let out;
    // BEGIN SOLUTION
    out = z.mapv(|v| v.max(0.0));
    // END SOLUTION
    out
}
// BEGIN HIDDEN TESTS
assert_eq!(relu(&array![[-1.0]])[[0, 0]], 0.0);
// END HIDDEN TESTS
"""
RELEASE = """fn relu(z: &Array2<f64>) -> Array2<f64> {
    let out;
    // YOUR CODE HERE
    todo!()
    out
}
"""


def cells(*sources):
    return [nbformat.v4.new_code_cell(s) for s in sources]


def test_the_release_nbgrader_makes_leaks_nothing():
    secret, leaked = leaked_lines(cells(SOURCE), RELEASE)
    assert "out = z.mapv(|v| v.max(0.0));" in secret
    assert "assert_eq!(relu(&array![[-1.0]])[[0, 0]], 0.0);" in secret
    assert leaked == []


def test_a_solution_line_left_in_the_release_is_named():
    _, leaked = leaked_lines(cells(SOURCE), RELEASE.replace("todo!()", "out = z.mapv(|v| v.max(0.0));"))
    assert leaked == ["out = z.mapv(|v| v.max(0.0));"]


def test_lines_that_also_stand_outside_a_region_may_be_released():
    shared = SOURCE + "let out;\n"  # `let out;` is also outside: not a secret
    secret, _ = leaked_lines(cells(shared, "// BEGIN SOLUTION\nlet out;\n// END SOLUTION\n"), RELEASE)
    assert "let out;" not in secret
