"""The course image's mlp-core (mlp_lab/course/student_source.py): the items marked
`#[cfg(feature = "solutions")]` cut with their doc comments, the rest kept as it is."""

import os
import shutil

from mlp_lab import ROOT
from mlp_lab.course.student_source import strip_crate, without_solutions

RUST = '''use crate::model::TwoLayerMLP;
#[cfg(feature = "solutions")]
use crate::engine::{self, Input};

/// Kept.
pub fn kept() {}

/// The answer.
/// Two lines of it.
#[cfg(feature = "solutions")]
impl TwoLayerMLP {
    fn forward(&self) {
        let x = 1;
    }
}

impl Choice {
    #[cfg(feature = "solutions")]
    #[inline]
    fn sparse_form(self) -> Option<u8> {
        None
    }

    fn other(self) {}
}
'''


def test_marked_items_go_with_their_doc_comments():
    text, cut = without_solutions(RUST)
    assert cut == 3
    assert "engine" not in text and "forward" not in text and "sparse_form" not in text
    assert "answer" not in text and "Two lines" not in text
    assert "/// Kept.\npub fn kept() {}" in text and "fn other(self) {}" in text and "impl Choice {" in text


def test_the_real_crate_loses_its_answers(tmp_path):
    crate = tmp_path / "mlp-core"
    shutil.copytree(os.path.join(ROOT, "mlp-core"), crate, ignore=shutil.ignore_patterns("target"))
    assert strip_crate(str(crate)) >= 6
    model = (crate / "src" / "model.rs").read_text()
    assert "fn forward(" not in model and "fn backward" not in model and "pub enum Activation" in model
    train = (crate / "src" / "train.rs").read_text()
    assert "impl Learner for Trainer" not in train and "fn train_with" not in train
    assert not (crate / "src" / "engine").exists()
    assert 'default = ["blas"]' in (crate / "Cargo.toml").read_text()
    for rs in (crate / "src").rglob("*.rs"):
        assert '#[cfg(feature = "solutions")]' not in rs.read_text(), rs
