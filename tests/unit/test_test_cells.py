"""What a test cell may name (mlp_lab/course/test_cells.py, make assignment's check)."""

from mlp_lab.course.test_cells import bare_names, grade_exports

HEAD = "(::mlp_core::grade::points(5.0, || { use ::mlp_core::grade::*;\n"


def cell(body):
    return HEAD + body + "\n}))"


def test_a_cell_of_grade_exports_and_its_own_names_passes():
    allowed = grade_exports() | {"loss"}
    assert {"points", "check_close"} <= grade_exports()
    source = cell("let (l, _) = loss(&x, &y)?;\ncheck_close(\"loss\", l, 1.30378789, 1e-12)?;\nOk(())")
    assert bare_names(source.replace("&x, &y", "&Toy::default().x, &Toy::default().y"), allowed | {"Toy"}) == []


def test_shadowable_names_and_bare_macros_are_named():
    allowed = grade_exports()
    problems = bare_names(cell("let n = helper(1);\nassert!(n > 0);\nOk(())"), allowed)
    assert any("`helper` is a bare name" in p for p in problems)
    assert any("`assert!` is a bare macro" in p and "::std::assert!" in p for p in problems)
    assert any("names the student's own crate" in p for p in bare_names(cell("crate::x();\nOk(())"), allowed))


def test_a_cell_that_is_not_one_points_expression_is_refused():
    problems = bare_names("let x = 1;\n::mlp_core::grade::points(1.0, || Ok(()))", grade_exports())
    assert any("it is not one expression" in p for p in problems)
