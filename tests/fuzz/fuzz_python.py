"""atheris harness over one target of tests/fuzz/targets.py, with the ctrgcn package (and PyYAML,
for configs) instrumented for coverage. Usage: fuzz_python.py TARGET [libFuzzer flags] CORPUS_DIR
(tests/fuzz/run_fuzz.py passes the usual ones); TARGET ``every_target`` runs them all in one process."""
import sys

import atheris

with atheris.instrument_imports(include=["ctrgcn", "yaml", "targets", "fuzz_seeds"]):
    import ctrgcn  # noqa: F401
    import ctrgcn.data  # noqa: F401
    import ctrgcn.formats.paddle  # noqa: F401
    import ctrgcn.formats.torch_zip  # noqa: F401
    import ctrgcn.training.config  # noqa: F401
    import targets

TARGET = targets.every_target if sys.argv[1] == "every_target" else targets.TARGETS[sys.argv[1]]


def test_one_input(data):
    TARGET(data)


if __name__ == "__main__":
    atheris.Setup([sys.argv[0]] + sys.argv[2:], test_one_input)
    atheris.Fuzz()
